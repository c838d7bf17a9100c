package federation

import (
	"bytes"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"testing"

	"github.com/edgenode/edgenode/media"
	"github.com/edgenode/edgenode/node/core"
)

// mediaAnswer is an answer of status with contentType and body.
func mediaAnswer(status int, contentType string, body []byte) *http.Response {
	return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {contentType}}, Body: io.NopCloser(bytes.NewReader(body))}
}

// twoParts is a multipart body of a metadata part and a content part.
func twoParts(meta string, metaType string, part textproto.MIMEHeader, content string) (string, []byte) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	p, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {metaType}})
	_, _ = io.WriteString(p, meta)
	if part != nil {
		p, _ = mw.CreatePart(part)
		_, _ = io.WriteString(p, content)
	}
	_ = mw.Close()
	return "multipart/mixed; boundary=" + mw.Boundary(), buf.Bytes()
}

// TestReadMediaAnswer: the spec's answer is read (type, file name,
// announced length, content); an error answer keeps its meaning; anything
// else an origin may send is the origin's unavailability or, past its
// announced length, too large, and never content.
func TestReadMediaAnswer(t *testing.T) {
	png := textproto.MIMEHeader{"Content-Type": {"image/png"}, "Content-Disposition": {`attachment; filename="a b.png"`}, "Content-Length": {"5"}}
	ct, ok := twoParts("{}", "application/json", png, "hello")
	m, err := readMediaAnswer(mediaAnswer(200, ct, ok))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(m.Body)
	if err != nil || string(got) != "hello" || m.ContentType != "image/png" || m.FileName != "a b.png" || m.Length != 5 {
		t.Fatalf("read %q, %v, %+v", got, err, m)
	}

	errorBody := func(code string) []byte { return []byte(`{"errcode":"` + code + `","error":"x"}`) }
	over, overBody := twoParts("{}", "application/json", png, "hello, and more")
	short, shortBody := twoParts("{}", "application/json", png, "hel")
	noLen, noLenBody := twoParts("{}", "application/json", textproto.MIMEHeader{"Content-Type": {"image/png"}}, strings.Repeat("z", 100))
	cases := []struct {
		name string
		res  *http.Response
		want error // of the answer, or of reading its body
	}{
		{"404", mediaAnswer(404, "application/json", errorBody("M_NOT_FOUND")), media.ErrNotFound},
		{"too large", mediaAnswer(502, "application/json", errorBody("M_TOO_LARGE")), media.ErrTooLarge},
		{"not yet uploaded", mediaAnswer(504, "application/json", errorBody("M_NOT_YET_UPLOADED")), media.ErrNotYetUploaded},
		{"500", mediaAnswer(500, "text/html", []byte("<html>")), core.ErrRemoteUnavailable},
		{"not multipart", mediaAnswer(200, "image/png", []byte("png")), core.ErrRemoteUnavailable},
		{"no boundary", mediaAnswer(200, "multipart/mixed", ok), core.ErrRemoteUnavailable},
		{"wrong boundary", mediaAnswer(200, "multipart/mixed; boundary=nope", ok), core.ErrRemoteUnavailable},
		{"metadata not JSON", func() *http.Response {
			c, b := twoParts("{", "application/json", png, "hello")
			return mediaAnswer(200, c, b)
		}(), core.ErrRemoteUnavailable},
		{"metadata of another type", func() *http.Response {
			c, b := twoParts("{}", "text/plain", png, "hello")
			return mediaAnswer(200, c, b)
		}(), core.ErrRemoteUnavailable},
		{"metadata too large", func() *http.Response {
			c, b := twoParts(`{"x":"`+strings.Repeat("a", maxMediaMetaBytes)+`"}`, "application/json", png, "hello")
			return mediaAnswer(200, c, b)
		}(), core.ErrRemoteUnavailable},
		{"no content part", func() *http.Response {
			c, b := twoParts("{}", "application/json", nil, "")
			return mediaAnswer(200, c, b)
		}(), core.ErrRemoteUnavailable},
		{"redirect", func() *http.Response {
			c, b := twoParts("{}", "application/json", textproto.MIMEHeader{"Location": {"https://example.org/x"}}, "")
			return mediaAnswer(200, c, b)
		}(), core.ErrRemoteUnavailable},
		{"bad length", func() *http.Response {
			c, b := twoParts("{}", "application/json", textproto.MIMEHeader{"Content-Length": {"-1"}}, "")
			return mediaAnswer(200, c, b)
		}(), core.ErrRemoteUnavailable},
		{"more than announced", mediaAnswer(200, over, overBody), media.ErrTooLarge},
		{"less than announced", mediaAnswer(200, short, shortBody), io.ErrUnexpectedEOF},
		{"no length announced", mediaAnswer(200, noLen, noLenBody), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := readMediaAnswer(c.res)
			if err == nil {
				_, err = io.ReadAll(m.Body)
			}
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
		})
	}
}
