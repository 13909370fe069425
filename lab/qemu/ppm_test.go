package qemu

import (
	"bytes"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPPMToPNG(t *testing.T) {
	dir := t.TempDir()
	ppm := filepath.Join(dir, "s.ppm")
	raster := []byte{255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90}
	if err := os.WriteFile(ppm, append([]byte("P6\n# made by a test\n3 2\n255\n"), raster...), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "s.png")
	if err := ppmToPNG(ppm, out); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() != 3 || img.Bounds().Dy() != 2 {
		t.Fatalf("size %v", img.Bounds())
	}
	for i, want := range []color.RGBA{{255, 0, 0, 255}, {0, 255, 0, 255}, {0, 0, 255, 255}, {10, 20, 30, 255}, {40, 50, 60, 255}, {70, 80, 90, 255}} {
		got := color.RGBAModel.Convert(img.At(i%3, i/3)).(color.RGBA)
		if got != want {
			t.Errorf("pixel %d = %v, want %v", i, got, want)
		}
	}
}

func TestPPMRejectsWhatItCannotRead(t *testing.T) {
	for name, data := range map[string]string{
		"ascii PPM":    "P3\n1 1\n255\n0 0 0\n",
		"16-bit":       "P6\n1 1\n65535\n\x00\x00\x00\x00\x00\x00",
		"short raster": "P6\n2 2\n255\n\x00\x00\x00",
		"huge":         "P6\n100000 100000\n255\n",
		"empty":        "",
	} {
		if _, err := decodePPM(strings.NewReader(data)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}
