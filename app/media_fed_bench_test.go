package app

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"testing"

	"github.com/edgenode/edgenode/internal/testnet"
)

// BenchmarkMediaFetchOverLibp2p: bob's download through B of a 16 MiB
// file of A's that B has not cached, so B fetches it from A over libp2p
// QUIC on loopback (signed request, multipart answer streamed to disk,
// fsynced and indexed) and serves it from there. The upload to A is
// outside the timer.
func BenchmarkMediaFetchOverLibp2p(b *testing.B) {
	const size = 16 << 20
	a := startBenchApp(b, nil)
	bn := startBenchApp(b, quicAddrs(a))
	ctx := context.Background()
	alice := testnet.Register(ctx, b, a.node, "alice")
	bob := testnet.Register(ctx, b, bn.node, "bob")
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		data[0]++ // new content each time
		origin, id := uploadMedia(ctx, b, a, alice.AccessToken, "application/octet-stream", data)
		b.StartTimer()
		req, _ := http.NewRequestWithContext(ctx, "GET", bn.BaseURL()+"/_matrix/client/v1/media/download/"+origin+"/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+bob.AccessToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		got, err := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if err != nil || got != size || res.StatusCode != http.StatusOK {
			b.Fatalf("download through B: %d, %d bytes, %v", res.StatusCode, got, err)
		}
	}
	if n := bn.mediaFetch.Started(); n != int64(b.N) {
		b.Fatalf("%d fetches for %d downloads", n, b.N)
	}
}
