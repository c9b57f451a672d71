package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godaos/godaos/server/config"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Storage layouts this daos_server cannot run yet are refused at start with the
// key and the fix; nothing is left running or listening.
func TestStartRefusesUnsupportedStorage(t *testing.T) {
	dir := t.TempDir()
	dev := filepath.Join(dir, "fakedev")
	os.WriteFile(dev, nil, 0o644)
	tests := []struct {
		name string
		edit func(*config.Server)
		want string
	}{
		{"block devices", func(c *config.Server) {
			c.Engines[0].Storage[1] = config.Tier{Class: config.ClassKdev, BdevList: []string{dev}}
		}, "engines[0].storage[1].class: class kdev is not supported"},
		{"two bdev entries", func(c *config.Server) {
			c.Engines[0].Storage[1].BdevList = append(c.Engines[0].Storage[1].BdevList, filepath.Join(dir, "b2"))
		}, "exactly one bdev_list entry"},
		{"no bdev tier", func(c *config.Server) { c.Engines[0].Storage = c.Engines[0].Storage[:1] }, "no bdev tier"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default(dir)
			cfg.Engines[0].FabricIfacePort = 1 // the storage check fails first: nothing listens
			tc.edit(cfg)
			s, err := Start(cfg, Options{Logger: quiet(), AutoFormat: true})
			if err == nil {
				s.Shutdown(context.Background())
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// A server that is not a replica registers the address its packets to the
// replicas leave from, not a loopback address other nodes could not reach.
func TestLocalHost(t *testing.T) {
	if got := localHost("node1", nil); got != "node1" {
		t.Errorf("replica: %s", got)
	}
	if got := localHost("", []string{"127.0.0.1:10001"}); got != "127.0.0.1" {
		t.Errorf("replica on loopback: %s", got)
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.To4() == nil {
			continue
		}
		// a replica elsewhere on this interface's network: the route leaves from this address
		peer := net.IPv4(ipn.IP[12], ipn.IP[13], ipn.IP[14], ipn.IP[15]^1)
		if got := localHost("", []string{net.JoinHostPort(peer.String(), "10001")}); got != ipn.IP.String() {
			t.Errorf("replica at %s: registered %s, want %s", peer, got, ipn.IP)
		}
		return
	}
}
