package qemu

import (
	"bufio"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
)

// maxScreenPixels bounds a screendump (QEMU's largest std-VGA mode is far below it).
const maxScreenPixels = 16384 * 16384

// decodePPM reads a binary PPM (P6, maxval 255), the format of QMP screendump.
func decodePPM(r io.Reader) (*image.RGBA, error) {
	br := bufio.NewReader(r)
	var magic string
	var w, h, maxval int
	if _, err := fmt.Fscan(br, &magic); err != nil || magic != "P6" {
		return nil, fmt.Errorf("not a binary PPM (P6) image: magic %q", magic)
	}
	for _, v := range []*int{&w, &h, &maxval} {
		if err := skipPPMComments(br); err != nil {
			return nil, err
		}
		if _, err := fmt.Fscan(br, v); err != nil {
			return nil, fmt.Errorf("PPM header: %w", err)
		}
	}
	if w <= 0 || h <= 0 || w*h > maxScreenPixels || maxval != 255 {
		return nil, fmt.Errorf("PPM header: %dx%d maxval %d not supported (want maxval 255 and a sane size)", w, h, maxval)
	}
	if _, err := br.ReadByte(); err != nil { // the single whitespace before the raster
		return nil, fmt.Errorf("PPM header: %w", err)
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	row := make([]byte, 3*w)
	for y := range h {
		if _, err := io.ReadFull(br, row); err != nil {
			return nil, fmt.Errorf("PPM raster, row %d of %d: %w", y, h, err)
		}
		px := img.Pix[y*img.Stride:]
		for x := range w {
			px[4*x], px[4*x+1], px[4*x+2], px[4*x+3] = row[3*x], row[3*x+1], row[3*x+2], 0xff
		}
	}
	return img, nil
}

func skipPPMComments(br *bufio.Reader) error {
	for range 1024 { // bounded: a header has few comment lines
		b, err := br.Peek(1)
		if err != nil {
			return fmt.Errorf("PPM header: %w", err)
		}
		switch b[0] {
		case ' ', '\t', '\r', '\n':
			br.ReadByte()
		case '#':
			if _, err := br.ReadString('\n'); err != nil {
				return fmt.Errorf("PPM header comment: %w", err)
			}
		default:
			return nil
		}
	}
	return fmt.Errorf("PPM header: too many comment lines")
}

// ppmToPNG converts a PPM file into a PNG file.
func ppmToPNG(ppmPath, pngPath string) error {
	f, err := os.Open(ppmPath)
	if err != nil {
		return err
	}
	defer f.Close()
	img, err := decodePPM(f)
	if err != nil {
		return fmt.Errorf("%s: %w", ppmPath, err)
	}
	out, err := os.Create(pngPath)
	if err != nil {
		return err
	}
	if err := png.Encode(out, img); err != nil {
		out.Close()
		return fmt.Errorf("writing %s: %w", pngPath, err)
	}
	return out.Close()
}
