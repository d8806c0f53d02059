package console

import (
	"crypto/rand"
	"crypto/tls"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestListenLoopbackAndURLFile(t *testing.T) {
	home := t.TempDir()
	ln, err := Listen(ListenConfig{Home: home, Addr: AddrAuto})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ln.URL, "http://127.0.0.1:") {
		t.Errorf("URL = %q; want http://127.0.0.1:PORT/", ln.URL)
	}
	got, err := ReadURL(home)
	if err != nil || got != ln.URL {
		t.Errorf("ReadURL = %q, %v; want %q", got, err, ln.URL)
	}
	if st, err := os.Stat(filepath.Join(home, URLFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("URL file: %v, %v; want mode 0600", st, err)
	}
	ln.Close()
	if _, err := ReadURL(home); err == nil {
		t.Error("ReadURL after Close succeeded; want the file removed")
	}

	// auto takes the last run's port again.
	os.WriteFile(filepath.Join(home, URLFile), []byte(ln.URL+"\n"), 0o600)
	ln2, err := Listen(ListenConfig{Home: home})
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	if ln2.URL != ln.URL {
		t.Errorf("second auto listen at %q; want the last port, %q", ln2.URL, ln.URL)
	}
	// ... and any other when it is taken.
	ln3, err := Listen(ListenConfig{Home: home})
	if err != nil {
		t.Fatalf("auto listen with the last port taken: %v", err)
	}
	defer ln3.Close()
	if ln3.URL == ln2.URL {
		t.Errorf("third listen at the taken %q", ln3.URL)
	}
}

func TestListenRefusesNonLoopback(t *testing.T) {
	home := t.TempDir()
	for _, tc := range []struct {
		addr string
		tls  bool
		want error
	}{
		{"0.0.0.0:0", false, ErrNotLoopback},
		{":0", false, ErrNotLoopback},
		{"192.0.2.1:8384", false, ErrNotLoopback},
		{"0.0.0.0:0", true, ErrNoPasswordCheck},
		{"[::]:0", true, ErrNoPasswordCheck},
	} {
		// A console without the password check. None listens: only
		// refusals are tried beyond loopback.
		ln, err := Listen(ListenConfig{Home: home, Addr: tc.addr, TLS: tc.tls})
		if err == nil {
			ln.Close()
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("Listen(%s, tls=%v) = %v; want %v", tc.addr, tc.tls, err, tc.want)
		}
	}
	if _, err := Listen(ListenConfig{Home: home, Addr: "localhost"}); err == nil {
		t.Error("Listen(localhost) without a port succeeded")
	}
	if _, err := os.Stat(filepath.Join(home, URLFile)); err == nil {
		t.Error("a refused listen wrote the URL file")
	}
}

// TestListenTLS: --gui-tls makes a certificate in the home, kept for the
// next run, that a client pinning it (CertPool) accepts.
func TestListenTLS(t *testing.T) {
	home := t.TempDir()
	ln, err := Listen(ListenConfig{Home: home, Addr: "127.0.0.1:0", TLS: true, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if !strings.HasPrefix(ln.URL, "https://127.0.0.1:") {
		t.Errorf("URL = %q; want https", ln.URL)
	}
	if st, err := os.Stat(filepath.Join(home, KeyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, %v; want mode 0600", st, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })}
	go srv.Serve(ln)
	defer srv.Close()
	pool, err := CertPool(home)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get(ln.URL)
	if err != nil {
		t.Fatalf("GET with the pinned certificate: %v", err)
	}
	resp.Body.Close()
	// Without it: refused.
	if resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(ln.URL); err == nil {
		resp.Body.Close()
		t.Error("GET without the certificate succeeded")
	}

	before, _ := os.ReadFile(filepath.Join(home, CertFile))
	ln2, err := Listen(ListenConfig{Home: home, Addr: "127.0.0.1:0", TLS: true, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	ln2.Close()
	after, _ := os.ReadFile(filepath.Join(home, CertFile))
	if string(before) != string(after) {
		t.Error("the certificate was made again on the next run")
	}
	// Close to expiry: made again.
	late := func() time.Time { return time.Now().Add(certValidity - certRenewBefore/2) }
	ln3, err := Listen(ListenConfig{Home: home, Addr: "127.0.0.1:0", TLS: true, Now: late, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	ln3.Close()
	if renewed, _ := os.ReadFile(filepath.Join(home, CertFile)); string(renewed) == string(after) {
		t.Error("a certificate about to expire was kept")
	}
}
