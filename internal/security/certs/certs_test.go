package certs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/godaos/godaos/internal/daoserr"
)

// gen generates a certificate directory for a test.
func gen(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := Generate(dir, GenerateOptions{}); err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return dir
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantErr checks err carries code and mentions every string of want.
func wantErr(t *testing.T, err error, code daoserr.Code, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", code)
	}
	if !daoserr.Is(err, code) {
		t.Errorf("error %q: code %v, want %v", err, daoserr.CodeOf(err), code)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func TestGenerate(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "etc", "certs") // Generate creates missing parents
	files, err := Generate(sub, GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		rel, _ := filepath.Rel(sub, f)
		names = append(names, rel)
	}
	slices.Sort(names)
	want := []string{"admin.crt", "admin.key", "agent.crt", "agent.key", "clients/agent.crt",
		"daosCA.crt", "daosCA.key", "server.crt", "server.key"}
	if !slices.Equal(names, want) {
		t.Fatalf("files written %v, want %v", names, want)
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		mode := certMode
		if strings.HasSuffix(f, ".key") {
			mode = keyMode
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %04o, want %04o", f, fi.Mode().Perm(), mode)
		}
	}

	ca := readCert(t, filepath.Join(sub, CACertFile))
	if !ca.IsCA || ca.MaxPathLen != 0 || !ca.MaxPathLenZero {
		t.Errorf("CA: IsCA %v MaxPathLen %d zero %v", ca.IsCA, ca.MaxPathLen, ca.MaxPathLenZero)
	}
	if d := time.Until(ca.NotAfter); d < time.Duration(DefaultDays-1)*24*time.Hour || d > time.Duration(DefaultDays+1)*24*time.Hour {
		t.Errorf("CA valid for %v, want about %d days", d, DefaultDays)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)

	tests := []struct {
		comp     string
		usages   []x509.ExtKeyUsage
		dnsNames []string
	}{
		{Server, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}, []string{"server"}},
		{Agent, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil},
		{Admin, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.comp, func(t *testing.T) {
			c := readCert(t, filepath.Join(sub, tc.comp+".crt"))
			if c.Subject.CommonName != tc.comp {
				t.Errorf("CN %q, want %q", c.Subject.CommonName, tc.comp)
			}
			if !slices.Equal(c.ExtKeyUsage, tc.usages) {
				t.Errorf("ExtKeyUsage %v, want %v", c.ExtKeyUsage, tc.usages)
			}
			if !slices.Equal(c.DNSNames, tc.dnsNames) {
				t.Errorf("DNSNames %v, want %v", c.DNSNames, tc.dnsNames)
			}
			if c.IsCA {
				t.Error("component certificate is a CA")
			}
			if _, ok := c.PublicKey.(*ecdsa.PublicKey); !ok {
				t.Errorf("key type %T, want ECDSA", c.PublicKey)
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: tc.usages}); err != nil {
				t.Errorf("does not chain to the CA: %v", err)
			}
		})
	}

	a, _ := os.ReadFile(filepath.Join(sub, "agent.crt"))
	b, _ := os.ReadFile(filepath.Join(sub, "clients", "agent.crt"))
	if !bytes.Equal(a, b) {
		t.Error("clients/agent.crt differs from agent.crt")
	}
}

func TestGenerateOptions(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(dir string) // state before Generate
		opts    GenerateOptions
		code    daoserr.Code // 0: success
		want    []string
	}{
		{name: "days", opts: GenerateOptions{Days: 10}},
		{name: "negative days", opts: GenerateOptions{Days: -1}, code: daoserr.Inval, want: []string{"-1 days"}},
		{
			name:    "refuse overwrite",
			prepare: func(dir string) { Generate(dir, GenerateOptions{}) },
			code:    daoserr.Exist,
			want:    []string{"daosCA.crt", "--force"},
		},
		{
			name: "refuse if any file exists",
			prepare: func(dir string) {
				os.MkdirAll(filepath.Join(dir, "clients"), 0o755)
				os.WriteFile(filepath.Join(dir, "clients", "agent.crt"), []byte("old"), 0o644)
			},
			code: daoserr.Exist,
			want: []string{filepath.Join("clients", "agent.crt")},
		},
		{
			name: "force replaces",
			prepare: func(dir string) {
				Generate(dir, GenerateOptions{})
				// An old key left world-readable must end up 0600.
				os.Chmod(filepath.Join(dir, "admin.key"), 0o644)
			},
			opts: GenerateOptions{Force: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.prepare != nil {
				tc.prepare(dir)
			}
			before := map[string][]byte{}
			ents, _ := filepath.Glob(filepath.Join(dir, "*"))
			for _, e := range append(ents, filepath.Join(dir, "clients", "agent.crt")) {
				if b, err := os.ReadFile(e); err == nil {
					before[e] = b
				}
			}

			files, err := Generate(dir, tc.opts)
			if tc.code != 0 {
				wantErr(t, err, tc.code, tc.want...)
				if len(files) != 0 {
					t.Errorf("wrote %v despite the error", files)
				}
				// Nothing was touched or added.
				after, _ := filepath.Glob(filepath.Join(dir, "*"))
				for _, e := range after {
					if fi, _ := os.Stat(e); fi.IsDir() {
						continue
					}
					if b, _ := os.ReadFile(e); !bytes.Equal(b, before[e]) {
						t.Errorf("%s changed or appeared", e)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for p, old := range before {
				if b, _ := os.ReadFile(p); bytes.Equal(b, old) {
					t.Errorf("%s not replaced", p)
				}
			}
			if fi, _ := os.Stat(filepath.Join(dir, "admin.key")); fi.Mode().Perm() != 0o600 {
				t.Errorf("admin.key mode %04o after Generate", fi.Mode().Perm())
			}
			if tc.opts.Days > 0 {
				c := readCert(t, filepath.Join(dir, "admin.crt"))
				want := time.Now().Add(time.Duration(tc.opts.Days) * 24 * time.Hour)
				if d := c.NotAfter.Sub(want); d < -2*time.Hour || d > 2*time.Hour {
					t.Errorf("NotAfter %v, want about %v", c.NotAfter, want)
				}
			}
			// No temporary files left behind.
			if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(left) > 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

// healthServer records the caller's component in a response header, so the test
// sees PeerComponent's answer from inside a handler.
type healthServer struct {
	healthpb.UnimplementedHealthServer
}

func (healthServer) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	comp, err := PeerComponent(ctx)
	if err != nil {
		comp = "none: " + err.Error()
	}
	grpc.SetHeader(ctx, metadata.Pairs("component", comp))
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (healthServer) List(context.Context, *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	return &healthpb.HealthListResponse{}, nil
}

func (healthServer) Watch(_ *healthpb.HealthCheckRequest, s grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	return s.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
}

// testAuthz: Check is administrative (admin, and servers among themselves),
// List is agent-facing, Watch is in no list (deny by default).
var testAuthz = Authorizer{
	healthpb.Health_Check_FullMethodName: {Admin, Server},
	healthpb.Health_List_FullMethodName:  {Agent},
}

// serve starts a health server on 127.0.0.1 with creds and the test Authorizer.
func serve(t *testing.T, creds credentials.TransportCredentials, insecureMode bool) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(creds),
		grpc.UnaryInterceptor(testAuthz.UnaryInterceptor(insecureMode)),
		grpc.StreamInterceptor(testAuthz.StreamInterceptor(insecureMode)))
	healthpb.RegisterHealthServer(srv, healthServer{})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// call invokes method on addr with a client using cfg, returning the component
// header Check reports.
func call(t *testing.T, addr string, creds credentials.TransportCredentials, method string) (string, error) {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c := healthpb.NewHealthClient(cc)
	var md metadata.MD
	switch method {
	case healthpb.Health_Check_FullMethodName:
		_, err = c.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md))
	case healthpb.Health_List_FullMethodName:
		_, err = c.List(ctx, &healthpb.HealthListRequest{})
	case healthpb.Health_Watch_FullMethodName:
		var s grpc.ServerStreamingClient[healthpb.HealthCheckResponse]
		if s, err = c.Watch(ctx, &healthpb.HealthCheckRequest{}); err == nil {
			_, err = s.Recv()
		}
	default:
		t.Fatalf("unknown method %s", method)
	}
	if v := md.Get("component"); len(v) > 0 {
		return v[0], err
	}
	return "", err
}

func TestMutualTLS(t *testing.T) {
	dir := gen(t)
	other := gen(t) // a different CA
	ca := filepath.Join(dir, CACertFile)

	stls, err := ServerTLS(ca, filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	if stls.MinVersion != tls.VersionTLS13 || stls.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("ServerTLS: MinVersion %x ClientAuth %v", stls.MinVersion, stls.ClientAuth)
	}
	addr := serve(t, credentials.NewTLS(stls), false)

	client := func(comp string) credentials.TransportCredentials {
		cfg, err := ClientTLS(ca, filepath.Join(dir, comp+".crt"), filepath.Join(dir, comp+".key"))
		if err != nil {
			t.Fatal(err)
		}
		return credentials.NewTLS(cfg)
	}
	caPool := func(path string) *x509.CertPool {
		p := x509.NewCertPool()
		p.AddCert(readCert(t, path))
		return p
	}
	// A client trusting our CA but presenting the other CA's admin certificate:
	// built by hand, since ClientTLS itself refuses the mismatch.
	foreign, err := tls.LoadX509KeyPair(filepath.Join(other, "admin.crt"), filepath.Join(other, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	foreignAdmin := credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13, ServerName: Server, RootCAs: caPool(ca),
		Certificates: []tls.Certificate{foreign},
	})
	noCert := credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, ServerName: Server, RootCAs: caPool(ca)})
	// A client that trusts only the other CA must refuse our server.
	wrongRoots := credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13, ServerName: Server, RootCAs: caPool(filepath.Join(other, CACertFile)),
		Certificates: []tls.Certificate{foreign},
	})

	tests := []struct {
		name     string
		creds    credentials.TransportCredentials
		method   string
		code     codes.Code
		comp     string   // component Check's handler saw
		mentions []string // in the status message
	}{
		{"admin calls admin method", client(Admin), healthpb.Health_Check_FullMethodName, codes.OK, Admin, nil},
		{"server calls server method", client(Server), healthpb.Health_Check_FullMethodName, codes.OK, Server, nil},
		{"agent calls agent method", client(Agent), healthpb.Health_List_FullMethodName, codes.OK, "", nil},
		{"agent refused admin method", client(Agent), healthpb.Health_Check_FullMethodName, codes.PermissionDenied, "",
			[]string{`"agent"`, healthpb.Health_Check_FullMethodName, "admin.crt", "daos_control.yml"}},
		{"admin refused agent method", client(Admin), healthpb.Health_List_FullMethodName, codes.PermissionDenied, "",
			[]string{`"admin"`, healthpb.Health_List_FullMethodName, "agent.crt"}},
		{"unlisted stream method denied", client(Admin), healthpb.Health_Watch_FullMethodName, codes.PermissionDenied, "",
			[]string{healthpb.Health_Watch_FullMethodName, "not in the control service's authorization table"}},
		{"cert from another CA refused at handshake", foreignAdmin, healthpb.Health_Check_FullMethodName, codes.Unavailable, "", nil},
		{"client without cert refused at handshake", noCert, healthpb.Health_Check_FullMethodName, codes.Unavailable, "", nil},
		{"server from another CA refused by client", wrongRoots, healthpb.Health_Check_FullMethodName, codes.Unavailable, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			comp, err := call(t, addr, tc.creds, tc.method)
			if got := status.Code(err); got != tc.code {
				t.Fatalf("code %v (%v), want %v", got, err, tc.code)
			}
			if comp != tc.comp {
				t.Errorf("handler saw component %q, want %q", comp, tc.comp)
			}
			for _, m := range tc.mentions {
				if !strings.Contains(status.Convert(err).Message(), m) {
					t.Errorf("message %q does not mention %q", status.Convert(err).Message(), m)
				}
			}
		})
	}
}

func TestInsecure(t *testing.T) {
	tests := []struct {
		name         string
		insecureMode bool
		code         codes.Code
	}{
		{"allow_insecure lets calls through", true, codes.OK},
		{"without allow_insecure a plaintext caller is unauthenticated", false, codes.Unauthenticated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := serve(t, insecure.NewCredentials(), tc.insecureMode)
			for _, m := range []string{healthpb.Health_Check_FullMethodName, healthpb.Health_Watch_FullMethodName} {
				comp, err := call(t, addr, insecure.NewCredentials(), m)
				if got := status.Code(err); got != tc.code {
					t.Errorf("%s: code %v (%v), want %v", m, got, err, tc.code)
				}
				if tc.code == codes.Unauthenticated && !strings.Contains(err.Error(), "not TLS") {
					t.Errorf("%s: message %q does not say the connection is not TLS", m, err)
				}
				if m == healthpb.Health_Check_FullMethodName && tc.code == codes.OK && !strings.Contains(comp, "not TLS") {
					t.Errorf("PeerComponent on plaintext: %q, want a 'not TLS' error", comp)
				}
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	dir := gen(t)
	other := gen(t)
	p := func(name string) string { return filepath.Join(dir, name) }
	ca := p(CACertFile)

	loose := filepath.Join(t.TempDir(), "loose.key")
	b, _ := os.ReadFile(p("admin.key"))
	os.WriteFile(loose, b, 0o600)
	os.Chmod(loose, 0o644)
	loose640 := filepath.Join(t.TempDir(), "group.key")
	os.WriteFile(loose640, b, 0o600)
	os.Chmod(loose640, 0o640)
	worldCA := filepath.Join(t.TempDir(), "daosCA.crt")
	b, _ = os.ReadFile(ca)
	os.WriteFile(worldCA, b, 0o644)
	os.Chmod(worldCA, 0o666)
	strict := filepath.Join(t.TempDir(), "strict.key")
	b, _ = os.ReadFile(p("agent.key"))
	os.WriteFile(strict, b, 0o400)

	tests := []struct {
		name string
		load func() error
		code daoserr.Code // 0: success
		want []string
	}{
		{"server ok", func() error { _, err := ServerTLS(ca, p("server.crt"), p("server.key")); return err }, 0, nil},
		{"client key mode 0400 ok", func() error { _, err := ClientTLS(ca, p("agent.crt"), strict); return err }, 0, nil},
		{"server key 0644", func() error { _, err := ServerTLS(ca, p("admin.crt"), loose); return err },
			daoserr.NoPerm, []string{loose, "0644", "mode 0600 or stricter"}},
		{"client key 0644", func() error { _, err := ClientTLS(ca, p("admin.crt"), loose); return err },
			daoserr.NoPerm, []string{loose, "0644", "mode 0600 or stricter"}},
		{"signer key 0640", func() error { _, err := LoadSigner(loose640); return err },
			daoserr.NoPerm, []string{loose640, "0640", "mode 0600 or stricter"}},
		{"world-writable CA", func() error { _, err := ClientTLS(worldCA, p("admin.crt"), p("admin.key")); return err },
			daoserr.NoPerm, []string{worldCA, "0666"}},
		{"missing cert", func() error { _, err := ClientTLS(ca, p("nope.crt"), p("admin.key")); return err },
			daoserr.Nonexist, []string{p("nope.crt"), "dmg cert generate --dir " + dir}},
		{"missing CA", func() error { _, err := ServerTLS(p("nope.crt"), p("server.crt"), p("server.key")); return err },
			daoserr.Nonexist, []string{p("nope.crt"), "dmg cert generate"}},
		{"unconfigured key", func() error { _, err := ClientTLS(ca, p("admin.crt"), ""); return err },
			daoserr.Inval, []string{"no key file configured", "allow_insecure"}},
		{"cert from another CA", func() error {
			_, err := ClientTLS(ca, filepath.Join(other, "admin.crt"), filepath.Join(other, "admin.key"))
			return err
		}, daoserr.NoPerm, []string{filepath.Join(other, "admin.crt"), "not signed by the configured CA"}},
		{"server with admin cert", func() error { _, err := ServerTLS(ca, p("admin.crt"), p("admin.key")); return err },
			daoserr.NoPerm, []string{p("admin.crt"), "server.crt"}},
		{"component cert as CA", func() error { _, err := ClientTLS(p("server.crt"), p("admin.crt"), p("admin.key")); return err },
			daoserr.Inval, []string{"not a CA certificate", CACertFile}},
		{"key of another cert", func() error { _, err := ClientTLS(ca, p("admin.crt"), p("agent.key")); return err },
			daoserr.Inval, []string{p("admin.crt"), p("agent.key")}},
		{"cert as key", func() error {
			k := filepath.Join(t.TempDir(), "cert.key")
			b, _ := os.ReadFile(p("admin.crt"))
			os.WriteFile(k, b, 0o600)
			_, err := LoadSigner(k)
			return err
		}, daoserr.Inval, []string{"no PEM private key"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.load()
			if tc.code == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr(t, err, tc.code, tc.want...)
		})
	}
}

func TestLoadVerifiers(t *testing.T) {
	dir := gen(t)
	other := gen(t)
	ca := filepath.Join(dir, CACertFile)
	clients := filepath.Join(dir, "clients")
	fp := func(d string) string {
		fp, err := Fingerprint(readCert(t, filepath.Join(d, "agent.crt")).PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return fp
	}
	mixed := t.TempDir()
	for _, src := range []string{filepath.Join(clients, "agent.crt"), filepath.Join(other, "agent.crt")} {
		b, _ := os.ReadFile(src)
		name := "a.crt"
		if strings.HasPrefix(src, other) {
			name = "b.crt"
		}
		os.WriteFile(filepath.Join(mixed, name), b, 0o644)
	}
	os.WriteFile(filepath.Join(mixed, "README"), []byte("not a cert"), 0o644) // ignored: not *.crt

	tests := []struct {
		name   string
		dir    string
		caCert string
		code   daoserr.Code
		want   []string // fingerprints on success, mentions on error
	}{
		{"client_cert_dir", clients, ca, 0, []string{fp(dir)}},
		{"cert from another CA", mixed, ca, daoserr.NoPerm, []string{filepath.Join(mixed, "b.crt"), "not signed by the configured CA"}},
		{"no CA check", mixed, "", 0, []string{fp(dir), fp(other)}},
		{"empty dir", t.TempDir(), ca, daoserr.Nonexist, []string{"no *.crt", "agent.crt"}},
		{"missing dir", filepath.Join(dir, "nope"), ca, daoserr.Nonexist, []string{"nope", "client_cert_dir"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := LoadVerifiers(tc.dir, tc.caCert)
			if tc.code != 0 {
				wantErr(t, err, tc.code, tc.want...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for k := range keys {
				got = append(got, k)
			}
			slices.Sort(got)
			slices.Sort(tc.want)
			if !slices.Equal(got, tc.want) {
				t.Errorf("fingerprints %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSignVerify(t *testing.T) {
	dir := gen(t)
	other := gen(t)
	agent, err := LoadSigner(filepath.Join(dir, "agent.key"))
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := LoadSigner(filepath.Join(other, "agent.key"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := LoadVerifiers(filepath.Join(dir, "clients"), filepath.Join(dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("uid=1000 gid=1000 host=node1")

	// Other key types Sign and Verify support, and the older PEM forms LoadSigner
	// reads (SEC 1, PKCS #1), written to files to go through LoadSigner.
	writeKey := func(typ string, der []byte) crypto.Signer {
		f := filepath.Join(t.TempDir(), "k.key")
		os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
		s, err := LoadSigner(f)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKCS8PrivateKey(edKey)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)

	tests := []struct {
		name   string
		signer crypto.Signer
		pub    func(t *testing.T, s crypto.Signer) crypto.PublicKey
		msg    []byte
		ok     bool
	}{
		{"agent key and client_cert_dir", agent, byFingerprint(keys), msg, true},
		{"altered message", agent, byFingerprint(keys), []byte("uid=0 gid=0 host=node1"), false},
		{"key of another agent", foreign, func(*testing.T, crypto.Signer) crypto.PublicKey { return agent.Public() }, msg, false},
		{"ed25519 PKCS #8", writeKey("PRIVATE KEY", edDER), publicOf, msg, true},
		{"ecdsa SEC 1", writeKey("EC PRIVATE KEY", ecDER), publicOf, msg, true},
		{"rsa PKCS #1", writeKey("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), publicOf, msg, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sig, err := Sign(tc.signer, msg)
			if err != nil {
				t.Fatal(err)
			}
			err = Verify(tc.pub(t, tc.signer), tc.msg, sig)
			if tc.ok && err != nil {
				t.Fatal(err)
			}
			if !tc.ok {
				wantErr(t, err, daoserr.NoPerm, "signature does not verify", "client_cert_dir")
			}
		})
	}

	if _, ok := keys[mustFingerprint(t, foreign.Public())]; ok {
		t.Error("another CA's agent key is among the verifiers")
	}
}

// byFingerprint finds the signer's verifier the way a server does: by the
// fingerprint the agent sends along.
func byFingerprint(keys map[string]crypto.PublicKey) func(*testing.T, crypto.Signer) crypto.PublicKey {
	return func(t *testing.T, s crypto.Signer) crypto.PublicKey {
		pub, ok := keys[mustFingerprint(t, s.Public())]
		if !ok {
			t.Fatal("signer's fingerprint not among the verifiers")
		}
		return pub
	}
}

func publicOf(_ *testing.T, s crypto.Signer) crypto.PublicKey { return s.Public() }

func mustFingerprint(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	fp, err := Fingerprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	if len(fp) != 64 {
		t.Fatalf("fingerprint %q is not 64 hex digits", fp)
	}
	return fp
}
