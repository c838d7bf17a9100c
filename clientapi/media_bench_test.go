package clientapi_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/edgenode/edgenode/app"
	"github.com/edgenode/edgenode/internal/testnode"
)

// BenchmarkMediaUpload uploads 16 MiB over loopback HTTP per op (streamed
// to disk, hashed, fsynced, indexed); b.SetBytes makes the MB/s column.
func BenchmarkMediaUpload(b *testing.B) {
	const size = 16 << 20
	n := testnode.Start(b, testnode.Options{Configure: func(c *app.Config) { c.Media.Limits.UserQuotaBytes = -1; c.Media.Limits.TotalQuotaBytes = -1 }})
	u := n.Register("bench")
	data := randomData(b, size)
	b.SetBytes(size)
	b.ReportAllocs() // B/op: the whole process (client too) allocates a fraction of the body
	for b.Loop() {
		data[0]++ // new content each time, not a deduplicated file
		res := mediaDo(b, "POST", n.URL+mediaLegacy+"/upload", u.Token, "application/octet-stream", bytes.NewReader(data), size)
		if res.status != http.StatusOK {
			b.Fatalf("upload: %d %s", res.status, res.body)
		}
	}
}

// BenchmarkMediaDownload downloads a 16 MiB upload over loopback HTTP per
// op through the authenticated endpoint.
func BenchmarkMediaDownload(b *testing.B) {
	const size = 16 << 20
	n := testnode.Start(b, testnode.Options{})
	u := n.Register("bench")
	server, id := upload(b, n, u.Token, "application/octet-stream", "", randomData(b, size))
	url := n.URL + mediaV1 + "/download/" + server + "/" + id
	b.SetBytes(size)
	for b.Loop() {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+u.Token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		got, err := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if err != nil || got != size {
			b.Fatalf("download: %d bytes, %v", got, err)
		}
	}
}
