package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"runtime"
	"testing"
)

func encodeTestImage(t testing.TB, format string, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x + y), 255})
		}
	}
	var buf bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&buf, img)
	case "jpeg":
		err = jpeg.Encode(&buf, img, nil)
	case "gif":
		err = gif.Encode(&buf, img, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// PNGBomb is a tiny PNG whose header announces w x h pixels: its image
// data is a few rows of a zlib stream, which a decoder would first
// allocate w*h*3 bytes to hold.
func pngBomb(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		b.WriteString(typ)
		b.Write(data)
		binary.Write(&b, binary.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk("IHDR", ihdr)
	chunk("IDAT", []byte{0x78, 0x9c, 0x63, 0x60, 0x18, 0x05, 0xa3, 0x60, 0x14, 0x0c, 0x77, 0x00, 0x00})
	chunk("IEND", nil)
	return b.Bytes()
}

func TestThumbnailSizes(t *testing.T) {
	ts := openTestStore(t, "", Limits{})
	ctx := context.Background()
	for _, c := range []struct {
		name         string
		format       string
		w, h         int
		spec         ThumbnailSpec
		wantW, wantH int
		wantType     string
	}{
		{"scale wide", "png", 400, 200, ThumbnailSpec{Width: 100, Height: 100, Method: MethodScale}, 100, 50, "image/png"},
		{"scale tall", "jpeg", 200, 400, ThumbnailSpec{Width: 100, Height: 100, Method: MethodScale}, 50, 100, "image/jpeg"},
		{"scale never enlarges", "png", 40, 30, ThumbnailSpec{Width: 800, Height: 600, Method: MethodScale}, 40, 30, "image/png"},
		{"crop exact", "png", 400, 200, ThumbnailSpec{Width: 96, Height: 96, Method: MethodCrop}, 96, 96, "image/png"},
		{"crop to shape", "jpeg", 300, 300, ThumbnailSpec{Width: 320, Height: 240, Method: MethodCrop}, 300, 225, "image/jpeg"},
		{"gif, animated asked", "gif", 120, 60, ThumbnailSpec{Width: 60, Height: 60, Method: MethodScale, Animated: true}, 60, 30, "image/png"},
		{"clamped request", "png", 3000, 100, ThumbnailSpec{Width: 100000, Height: 100000, Method: MethodScale}, MaxThumbnailDimension, 42, "image/png"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec, err := ts.Put(ctx, Upload{Uploader: "@a:x", ContentType: "image/" + c.format}, bytes.NewReader(encodeTestImage(t, c.format, c.w, c.h)))
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // made, then cached
				th, err := ts.Thumbnail(ctx, testServer, rec.ID, c.spec)
				if err != nil {
					t.Fatal(err)
				}
				if th.ContentType != c.wantType {
					t.Fatalf("content type %s, want %s", th.ContentType, c.wantType)
				}
				cfg, _, err := image.DecodeConfig(bytes.NewReader(readAll(t, th)))
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Width != c.wantW || cfg.Height != c.wantH {
					t.Fatalf("thumbnail %dx%d, want %dx%d", cfg.Width, cfg.Height, c.wantW, c.wantH)
				}
			}
		})
	}
	u, _ := ts.Usage(ctx)
	if u.ThumbnailFiles != 7 {
		t.Fatalf("%d thumbnails cached, want 7", u.ThumbnailFiles)
	}
}

func TestThumbnailRefusals(t *testing.T) {
	ts := openTestStore(t, "", Limits{MaxThumbnailsPerMedia: 2})
	ctx := context.Background()
	put := func(b []byte) string {
		rec, err := ts.Put(ctx, Upload{Uploader: "@a:x"}, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		return rec.ID
	}
	bomb := put(pngBomb(20000, 20000))
	text := put([]byte("just some text, not an image"))
	spec := ThumbnailSpec{Width: 64, Height: 64, Method: MethodScale}

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := ts.Thumbnail(ctx, testServer, bomb, spec); !errors.Is(err, ErrTooManyPixels) {
		t.Fatalf("bomb: %v", err)
	}
	runtime.ReadMemStats(&after)
	// Decoding would allocate 20000*20000*3 bytes (1.2 GB) at once.
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Fatalf("refusing the bomb allocated %d bytes", grew)
	}
	if _, err := ts.Thumbnail(ctx, testServer, text, spec); !errors.Is(err, ErrCannotThumbnail) {
		t.Fatalf("text: %v", err)
	}
	if _, err := ts.Thumbnail(ctx, testServer, text, ThumbnailSpec{Width: 0, Height: 5, Method: MethodScale}); !errors.Is(err, ErrCannotThumbnail) {
		t.Fatalf("zero width: %v", err)
	}
	// Beyond MaxThumbnailsPerMedia: made, served, not kept.
	img := put(encodeTestImage(t, "png", 50, 50))
	for i := range 4 {
		th, err := ts.Thumbnail(ctx, testServer, img, ThumbnailSpec{Width: 10 + i, Height: 10 + i, Method: MethodCrop})
		if err != nil {
			t.Fatal(err)
		}
		if len(readAll(t, th)) == 0 {
			t.Fatal("empty thumbnail")
		}
	}
	if u, _ := ts.Usage(ctx); u.ThumbnailFiles != 2 {
		t.Fatalf("%d thumbnails kept, want 2", u.ThumbnailFiles)
	}
}

// TestRemoteThumbnailsEvictedWithSource: a cached remote item's thumbnails
// go with it, files included.
func TestRemoteThumbnailsEvictedWithSource(t *testing.T) {
	ts := openTestStore(t, "", Limits{})
	ctx := context.Background()
	if _, err := ts.PutRemote(ctx, "far.test", "pic", RemoteMeta{ContentType: "image/png"}, bytes.NewReader(encodeTestImage(t, "png", 100, 80)), 0); err != nil {
		t.Fatal(err)
	}
	th, err := ts.Thumbnail(ctx, "far.test", "pic", ThumbnailSpec{Width: 32, Height: 32, Method: MethodCrop})
	if err != nil {
		t.Fatal(err)
	}
	th.Close()
	if n := len(files(t, ts.contentDir())); n != 2 {
		t.Fatalf("%d files, want 2", n)
	}
	if _, err := ts.EvictRemote(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if n := len(files(t, ts.contentDir())); n != 0 {
		t.Fatalf("%d files after eviction", n)
	}
	if u, _ := ts.Usage(ctx); u.ThumbnailFiles != 0 || u.DiskBytes != 0 {
		t.Fatalf("usage after eviction %+v", u)
	}
}

func BenchmarkThumbnailJPEG4000x3000(b *testing.B) {
	ts := openTestStore(b, "", Limits{})
	ctx := context.Background()
	rec, err := ts.Put(ctx, Upload{Uploader: "@a:x"}, bytes.NewReader(encodeTestImage(b, "jpeg", 4000, 3000)))
	if err != nil {
		b.Fatal(err)
	}
	src, err := ts.Get(ctx, testServer, rec.ID)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	b.ReportAllocs()
	for b.Loop() {
		// render, not Thumbnail: the cache would answer every run but the first.
		if _, _, err := ts.render(src, ThumbnailSpec{Width: 800, Height: 600, Method: MethodScale}); err != nil {
			b.Fatal(err)
		}
	}
}
