package media

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"

	"github.com/edgenode/edgenode/kv"
	"golang.org/x/image/draw"
	"golang.org/x/image/webp"
	"golang.org/x/sync/singleflight"
)

// Thumbnail methods (the spec's).
const (
	MethodScale = "scale"
	MethodCrop  = "crop"
)

// MaxThumbnailDimension bounds a thumbnail's width and height: larger
// requests are made at this size (the spec lets a server answer with
// another size than asked).
const MaxThumbnailDimension = 1280

// ThumbnailSpec is a thumbnail request.
type ThumbnailSpec struct {
	Width, Height int
	// Method is MethodScale (fit inside, keep the aspect ratio) or
	// MethodCrop (fill exactly, cropping the middle).
	Method string
	// Animated asks for an animated thumbnail; thumbnails are static here,
	// which the spec allows ("behave as though animated is false").
	Animated bool
}

// thumbnailer bounds thumbnailings at once and shares one among
// concurrent requests for the same thumbnail.
type thumbnailer struct {
	slots chan struct{}
	group singleflight.Group
}

func newThumbnailer(workers int) *thumbnailer {
	return &thumbnailer{slots: make(chan struct{}, max(workers, 1))}
}

// imageFormat is a decodable image format.
type imageFormat struct {
	name         string
	decodeConfig func(io.Reader) (image.Config, error)
	decode       func(io.Reader) (image.Image, error)
}

var (
	formatJPEG = imageFormat{"jpeg", jpeg.DecodeConfig, jpeg.Decode}
	formatPNG  = imageFormat{"png", png.DecodeConfig, png.Decode}
	formatGIF  = imageFormat{"gif", gif.DecodeConfig, gif.Decode} // the first frame
	formatWebP = imageFormat{"webp", webp.DecodeConfig, webp.Decode}
)

// sniffFormat names the image format of a file from its first bytes; the
// uploader's content type is not trusted.
func sniffFormat(head []byte) (imageFormat, bool) {
	switch {
	case bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF}):
		return formatJPEG, true
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return formatPNG, true
	case bytes.HasPrefix(head, []byte("GIF87a")), bytes.HasPrefix(head, []byte("GIF89a")):
		return formatGIF, true
	case len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "WEBP":
		return formatWebP, true
	}
	return imageFormat{}, false
}

// Thumbnail returns a thumbnail of origin/id (local, or cached remote),
// made on demand and cached. It fails with ErrCannotThumbnail for content
// that is not a JPEG, PNG, GIF or WebP image, and ErrTooManyPixels for an
// image whose header announces more than Limits.MaxThumbnailPixels: that
// is checked before decoding, so a small file announcing a huge image
// costs no memory.
func (s *Store) Thumbnail(ctx context.Context, origin, id string, spec ThumbnailSpec) (*Content, error) {
	if spec.Width <= 0 || spec.Height <= 0 || (spec.Method != MethodScale && spec.Method != MethodCrop) {
		return nil, fmt.Errorf("%w: bad size or method", ErrCannotThumbnail)
	}
	spec.Width, spec.Height = min(spec.Width, MaxThumbnailDimension), min(spec.Height, MaxThumbnailDimension)
	key := kv.Key(tThumb, origin, id, spec.Width, spec.Height, spec.Method)
	if c, err := s.cachedThumbnail(key, origin, id); err == nil || !errors.Is(err, ErrNotFound) {
		return c, err
	}
	src, err := s.Get(ctx, origin, id)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	v, err, _ := s.thumbs.group.Do(string(key), func() (any, error) {
		return s.makeThumbnail(ctx, key, src, spec)
	})
	if err != nil {
		return nil, err
	}
	made := v.(madeThumbnail)
	if made.cached {
		return s.cachedThumbnail(key, origin, id)
	}
	// Made but not kept (its media has Limits.MaxThumbnailsPerMedia
	// cached already): served from memory; thumbnails are small.
	return &Content{Record: made.rec, body: bytes.NewReader(made.data)}, nil
}

type madeThumbnail struct {
	rec    Record
	cached bool
	data   []byte
}

func (s *Store) cachedThumbnail(key []byte, origin, id string) (*Content, error) {
	var rec Record
	if err := s.db.View(func(tx *kv.Txn) error {
		var err error
		rec, err = getRecord(tx, key, origin, id)
		return err
	}); err != nil {
		return nil, err
	}
	return s.open(rec)
}

// makeThumbnail decodes src within the pixel budget, scales it, and caches
// the result (unless its media has too many thumbnails cached already).
func (s *Store) makeThumbnail(ctx context.Context, key []byte, src *Content, spec ThumbnailSpec) (madeThumbnail, error) {
	select {
	case s.thumbs.slots <- struct{}{}:
		defer func() { <-s.thumbs.slots }()
	case <-ctx.Done():
		return madeThumbnail{}, ctx.Err()
	}
	data, contentType, err := s.render(src, spec)
	if err != nil {
		return madeThumbnail{}, err
	}
	t, err := s.writeTemp(ctx, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return madeThumbnail{}, err
	}
	rec := Record{
		Origin: src.Origin, ID: src.ID, Hash: t.hash, ContentType: contentType, Size: t.size,
		CreatedMS: s.now().UnixMilli(), Restricted: src.Restricted,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.place(t); err != nil {
		return madeThumbnail{}, err
	}
	cached := false
	err = s.update(func(tx *kv.Txn) error {
		cached = false
		// The source may have been evicted while we worked: then keep
		// nothing (its thumbnails go with it).
		if !s.Local(src.Origin) {
			if ok, err := tx.Has(kv.Key(tRemote, src.Origin, src.ID)); err != nil || !ok {
				return err
			}
		}
		n := 0
		if err := tx.Each(kv.Scan{Prefix: kv.Key(tThumb, src.Origin, src.ID), KeysOnly: true}, func([]byte, []byte) (bool, error) {
			n++
			return n < s.limits.MaxThumbnailsPerMedia, nil
		}); err != nil {
			return err
		}
		if n >= s.limits.MaxThumbnailsPerMedia {
			return nil
		}
		if err := tx.SetJSON(key, rec); err != nil {
			return err
		}
		if err := addCounter(tx, counterThumbBytes, t.size); err != nil {
			return err
		}
		if err := addCounter(tx, counterThumbFiles, 1); err != nil {
			return err
		}
		cached = true
		return addRef(tx, t.hash, t.size)
	})
	if err != nil || !cached {
		s.unplaceIfUnused(t.hash)
	}
	if err != nil {
		return madeThumbnail{}, err
	}
	return madeThumbnail{rec: rec, cached: cached, data: data}, nil
}

// render decodes f (checking the pixel budget first) and returns the
// encoded thumbnail and its content type.
func (s *Store) render(f io.ReadSeeker, spec ThumbnailSpec) (data []byte, contentType string, err error) {
	// Decoders of hostile input have panicked before (x/image's among
	// them); a file that crashes one is just not an image we thumbnail.
	defer func() {
		if v := recover(); v != nil {
			data, contentType, err = nil, "", fmt.Errorf("%w: decoder panicked: %v", ErrCannotThumbnail, v)
		}
	}()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, "", fmt.Errorf("media: %w", err)
	}
	br := bufio.NewReaderSize(f, 64<<10)
	head, _ := br.Peek(12)
	format, ok := sniffFormat(head)
	if !ok {
		return nil, "", fmt.Errorf("%w: not a JPEG, PNG, GIF or WebP image", ErrCannotThumbnail)
	}
	cfg, err := format.decodeConfig(br)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s header: %v", ErrCannotThumbnail, format.name, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > s.limits.MaxThumbnailPixels {
		return nil, "", fmt.Errorf("%w: %dx%d is over %d pixels", ErrTooManyPixels, cfg.Width, cfg.Height, s.limits.MaxThumbnailPixels)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, "", fmt.Errorf("media: %w", err)
	}
	br.Reset(f)
	img, err := format.decode(br)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s: %v", ErrCannotThumbnail, format.name, err)
	}
	// The header was checked, but a decoder's image could still differ.
	if b := img.Bounds(); int64(b.Dx())*int64(b.Dy()) > s.limits.MaxThumbnailPixels {
		return nil, "", fmt.Errorf("%w: decoded %v", ErrTooManyPixels, b)
	}
	out := resize(img, spec)
	var buf bytes.Buffer
	if format.name == "jpeg" {
		err = jpeg.Encode(&buf, out, &jpeg.Options{Quality: 85})
		return buf.Bytes(), "image/jpeg", err
	}
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	err = enc.Encode(&buf, out)
	return buf.Bytes(), "image/png", err
}

// thumbnailSize is the size of spec's thumbnail of a w x h image, and the
// part of the image it shows. Images are never enlarged.
func thumbnailSize(w, h int, spec ThumbnailSpec) (dw, dh int, src image.Rectangle) {
	src = image.Rect(0, 0, w, h)
	if spec.Method == MethodCrop {
		dw, dh = spec.Width, spec.Height
		// Shrink the box, keeping its shape, until the image covers it.
		if dw > w {
			dh, dw = max(dh*w/dw, 1), w
		}
		if dh > h {
			dw, dh = max(dw*h/dh, 1), h
		}
		// The largest middle part of the image of the box's shape.
		if w*dh > h*dw { // image wider than the box
			cw := max(h*dw/dh, 1)
			x := (w - cw) / 2
			src = image.Rect(x, 0, x+cw, h)
		} else {
			ch := max(w*dh/dw, 1)
			y := (h - ch) / 2
			src = image.Rect(0, y, w, y+ch)
		}
		return dw, dh, src
	}
	if w <= spec.Width && h <= spec.Height {
		return w, h, src
	}
	// Fit inside: the tighter of the two ratios.
	if w*spec.Height > h*spec.Width {
		return spec.Width, max(h*spec.Width/w, 1), src
	}
	return max(w*spec.Height/h, 1), spec.Height, src
}

// resize draws img at its thumbnail size. x/image's kernel scalers hold a
// float64 buffer of the destination's width times the source's height
// (76 MB for a 4000x3000 photo to 800x600), too much for a phone; so the
// image is sampled bilinearly (no buffer) to twice the size, and each 2x2
// block of that averaged: the intermediate costs 16 bytes per thumbnail
// pixel, and averaging it tames most of the aliasing sampling alone has.
func resize(img image.Image, spec ThumbnailSpec) image.Image {
	b := img.Bounds()
	dw, dh, src := thumbnailSize(b.Dx(), b.Dy(), spec)
	src = src.Add(b.Min)
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	if src.Dx() <= 2*dw && src.Dy() <= 2*dh {
		draw.ApproxBiLinear.Scale(dst, dst.Bounds(), img, src, draw.Src, nil)
		return dst
	}
	mid := image.NewRGBA(image.Rect(0, 0, 2*dw, 2*dh))
	draw.ApproxBiLinear.Scale(mid, mid.Bounds(), img, src, draw.Src, nil)
	halve(dst, mid)
	return dst
}

// halve averages each 2x2 block of src (twice dst's size) into dst.
func halve(dst, src *image.RGBA) {
	for y := range dst.Rect.Dy() {
		r0 := src.Pix[2*y*src.Stride:]
		r1 := src.Pix[(2*y+1)*src.Stride:]
		out := dst.Pix[y*dst.Stride:]
		for x := range dst.Rect.Dx() {
			i := 8 * x
			for c := range 4 {
				sum := uint16(r0[i+c]) + uint16(r0[i+4+c]) + uint16(r1[i+c]) + uint16(r1[i+4+c])
				out[4*x+c] = uint8((sum + 2) / 4)
			}
		}
	}
}

// dropThumbnails deletes origin/id's cached thumbnails in tx and returns
// the hashes whose last reference went.
func dropThumbnails(tx *kv.Txn, origin, id string) ([]string, error) {
	var recs []Record
	var keys [][]byte
	err := tx.Each(kv.Scan{Prefix: kv.Key(tThumb, origin, id)}, func(k, v []byte) (bool, error) {
		var r Record
		if err := jsonUnmarshal(v, &r); err != nil {
			return false, err
		}
		recs = append(recs, r)
		keys = append(keys, bytes.Clone(k))
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	var freed []string
	for i, r := range recs {
		if err := tx.Delete(keys[i]); err != nil {
			return nil, err
		}
		if err := addCounter(tx, counterThumbBytes, -r.Size); err != nil {
			return nil, err
		}
		if err := addCounter(tx, counterThumbFiles, -1); err != nil {
			return nil, err
		}
		if last, err := dropRef(tx, r.Hash, r.Size); err != nil {
			return nil, err
		} else if last {
			freed = append(freed, r.Hash)
		}
	}
	return freed, nil
}
