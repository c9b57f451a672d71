package vos

import (
	"os"

	"github.com/godaos/godaos/internal/checksum"
)

func mkTemp() (string, error) { return os.MkdirTemp("", "vos-model-") }
func removeAll(dir string)    { os.RemoveAll(dir) }

func putCRC(img []byte) {
	n := len(img) - 4
	c := checksum.Sum32C(img[:n])
	img[n], img[n+1], img[n+2], img[n+3] = byte(c), byte(c>>8), byte(c>>16), byte(c>>24)
}
