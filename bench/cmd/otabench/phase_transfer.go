package main

import (
	"archive/zip"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/otaship/ota/bench/internal/load"
	"github.com/otaship/ota/pkg/ota"
)

const mib = 1 << 20

// makeBundleZip writes a valid web bundle of about size bytes: index.html
// and 8 MiB files of random (incompressible, so stored) bytes. Each seed
// gives other bytes, so no upload is deduplicated against an earlier one.
func makeBundleZip(path string, size int64, seed uint64) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create bundle: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	zw := zip.NewWriter(bw)
	w, err := zw.Create("index.html")
	if err != nil {
		f.Close()
		return err
	}
	fmt.Fprintf(w, "<!doctype html><html><head><title>bench %d</title></head><body><script src=\"assets/app.js\"></script></body></html>\n", seed)
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 'b', 'e', 'n', 'c', 'h'})
	buf := make([]byte, 64<<10)
	for i, left := 0, size; left > 0; i++ {
		n := min(left, 8*mib)
		w, err := zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("assets/blob-%03d.bin", i), Method: zip.Store})
		if err != nil {
			f.Close()
			return err
		}
		for m := n; m > 0; {
			k := min(m, int64(len(buf)))
			_, _ = rng.Read(buf[:k])
			if _, err := w.Write(buf[:k]); err != nil {
				f.Close()
				return fmt.Errorf("write bundle: %w", err)
			}
			m -= k
		}
		left -= n
	}
	if err := errors.Join(zw.Close(), bw.Flush()); err != nil {
		f.Close()
		return fmt.Errorf("write bundle: %w", err)
	}
	return f.Close()
}

// upload streams path to otad's upload endpoint as the old script did
// (multipart: app_id, channel, version, file) and returns the result.
func upload(ctx context.Context, client *http.Client, addr, token, path, version string) (ota.UploadResult, error) {
	var res ota.UploadResult
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			for _, kv := range [][2]string{{"app_id", benchApp}, {"channel", "production"}, {"version", version}} {
				if err := mw.WriteField(kv[0], kv[1]); err != nil {
					return err
				}
			}
			part, err := mw.CreateFormFile("file", filepath.Base(path))
			if err != nil {
				return err
			}
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.Copy(part, f); err != nil {
				return err
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	req, err := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/api/ota/admin/ota/upload", pr)
	if err != nil {
		return res, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return res, fmt.Errorf("upload %s: %w", version, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return res, fmt.Errorf("upload %s: HTTP %d: %s", version, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return res, fmt.Errorf("upload %s: answer %s: %w", version, body, err)
	}
	return res, nil
}

// download GETs url and discards the body; it returns the bytes and time.
func download(ctx context.Context, client *http.Client, url string) (int64, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("download %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("download %s: HTTP %d", url, resp.StatusCode)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return n, 0, fmt.Errorf("download %s: %w", url, err)
	}
	return n, time.Since(t0), nil
}

// phaseUploadDownload: targets 4 and 5 on one otad with an empty store on
// the scratch disk.
func (b *bench) phaseUploadDownload(ctx context.Context) error {
	dir := b.path("transfer")
	_ = os.RemoveAll(dir)
	otad, err := b.startOtad(ctx, "otad-transfer", dir)
	if err != nil {
		return err
	}
	defer otad.stop()
	token, err := login(otad.addr)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()

	var last ota.UploadResult
	n := 0
	for _, size := range []int64{25 * mib, 200 * mib} {
		var upTimes, floorTimes []time.Duration
		var ratios []float64
		var rssGrowth int64
		label := fmt.Sprintf("%d MiB", size/mib)
		for i := range b.cfg.reps {
			n++
			zipPath := b.path(fmt.Sprintf("bundle-%d.zip", size/mib))
			if err := makeBundleZip(zipPath, size, uint64(n)); err != nil {
				return err
			}
			dst := b.path("floor-copy.zip")
			_ = os.Remove(dst)
			// The floor: hash the file, copy it onto the disk otad stores
			// on, and make the copy durable, as otad must.
			floor, _, err := timeCmd(ctx, "", "sh", "-c", `sha256sum "$1" >/dev/null && cp "$1" "$2" && sync "$2"`, "sh", zipPath, dst)
			if err != nil {
				return err
			}
			_ = os.Remove(dst)
			rss, err := procStatusKB(otad.pid(), "VmRSS")
			if err != nil {
				return err
			}
			if err := resetPeakRSS(otad.pid()); err != nil {
				return err
			}
			t0 := time.Now()
			res, err := upload(ctx, client, otad.addr, token, zipPath, fmt.Sprintf("2.%d.%d", size/mib, i))
			up := time.Since(t0)
			if err != nil {
				return err
			}
			hwm, err := procStatusKB(otad.pid(), "VmHWM")
			if err != nil {
				return err
			}
			rssGrowth = max(rssGrowth, (hwm-rss)*1024)
			logf("  %s run %d: upload %s, floor %s, peak RSS +%s", label, i+1, fmtDur(up), fmtDur(floor), fmtMB((hwm-rss)*1024))
			upTimes, floorTimes = append(upTimes, up), append(floorTimes, floor)
			ratios = append(ratios, up.Seconds()/floor.Seconds())
			last = res
		}
		ut, ft, ratio := median(upTimes), median(floorTimes), median(ratios)
		b.add(row{
			target:    "upload " + label + " bundle over loopback",
			measured:  fmt.Sprintf("%s (%.0f MB/s)", fmtDur(ut), float64(size)/1e6/ut.Seconds()),
			reference: "sha256sum + cp + sync " + fmtDur(ft),
			ratio:     fmt.Sprintf("%.2f", ratio),
			threshold: "≤ 1.50",
			ok:        ratio <= 1.5,
		})
		if size == 200*mib {
			b.add(row{
				target:    "otad peak RSS growth during a 200 MiB upload",
				measured:  fmtMB(rssGrowth),
				reference: "VmHWM − VmRSS before",
				ratio:     "-",
				threshold: "< 32 MB",
				ok:        rssGrowth < 32e6,
			})
		}
	}
	return b.phaseDownload(ctx, client, otad, dir, last)
}

// phaseDownload: target 5, the last uploaded 200 MiB bundle from otad
// against http.ServeFile of the very same stored file.
func (b *bench) phaseDownload(ctx context.Context, client *http.Client, otad *proc, dataDir string, bundle ota.UploadResult) error {
	sha := bundle.Bundle.SHA256
	var blobFile string
	err := filepath.WalkDir(filepath.Join(dataDir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(d.Name(), sha) {
			blobFile = p
			return filepath.SkipAll
		}
		return err
	})
	if err != nil || blobFile == "" {
		return fmt.Errorf("find the stored file of bundle %s under %s: %v", sha, dataDir, err)
	}
	ref, err := startProc(ctx, "refserver-file", filepath.Join(b.cfg.bin, "refserver"),
		[]string{"file", "--path", blobFile, "--addr-file", b.path("refserver-file.addr")}, nil, b.path("refserver-file.addr"))
	if err != nil {
		return err
	}
	defer ref.stop()
	otaURL := "http://" + otad.addr + "/api/ota/bundle/" + sha + ".zip"
	refURL := "http://" + ref.addr + "/file"
	var otaRates, refRates, ratios []float64
	var size int64
	for i := range b.cfg.reps + 2 {
		n1, d1, err := download(ctx, client, otaURL)
		if err != nil {
			return err
		}
		n2, d2, err := download(ctx, client, refURL)
		if err != nil {
			return err
		}
		if n1 != n2 {
			return fmt.Errorf("otad sent %d bytes, the reference %d", n1, n2)
		}
		size = n1
		logf("  download run %d: otad %s, ServeFile %s", i+1, fmtDur(d1), fmtDur(d2))
		otaRates, refRates = append(otaRates, float64(n1)/1e6/d1.Seconds()), append(refRates, float64(n2)/1e6/d2.Seconds())
		ratios = append(ratios, d2.Seconds()/d1.Seconds())
	}
	or, rr, ratio := median(otaRates), median(refRates), median(ratios)
	b.add(row{
		target:    fmt.Sprintf("download %d MiB bundle", size/mib),
		measured:  fmt.Sprintf("%.0f MB/s", or),
		reference: fmt.Sprintf("%.0f MB/s http.ServeFile", rr),
		ratio:     fmt.Sprintf("%.2f", ratio),
		threshold: "≥ 0.90",
		ok:        ratio >= 0.9,
	})

	// Range: the last MiB must be served without reading what precedes it.
	// rchar counts read(2) and sendfile(2) bytes alike.
	pid := otad.pid()
	r0, err := procRchar(pid)
	if err != nil {
		return err
	}
	if _, _, err := download(ctx, client, otaURL); err != nil {
		return err
	}
	r1, err := procRchar(pid)
	if err != nil {
		return err
	}
	t0 := time.Now()
	status, body, err := load.Do(otad.addr, load.Request{Method: "GET", Path: "/api/ota/bundle/" + sha + ".zip",
		Header: map[string]string{"Range": fmt.Sprintf("bytes=-%d", mib)}})
	rangeTime := time.Since(t0)
	if err != nil {
		return err
	}
	r2, err := procRchar(pid)
	if err != nil {
		return err
	}
	const target = "Range request for the last 1 MiB of 200 MiB"
	if status != http.StatusPartialContent || len(body) != mib {
		b.miss(target, "≤ 1.50", fmt.Errorf("got HTTP %d with %d bytes, want 206 with %d", status, len(body), mib))
		return nil
	}
	full, part := r1-r0, r2-r1
	if full < size/2 {
		b.miss(target, "≤ 1.50", fmt.Errorf("rchar grew by only %d bytes for a full download of %d: it cannot see this server's reads", full, size))
		return nil
	}
	ratio = float64(part) / mib
	b.add(row{
		target:    target,
		measured:  fmt.Sprintf("read %s in %s", fmtMB(part), fmtDur(rangeTime)),
		reference: fmt.Sprintf("1 MiB asked (full GET read %s)", fmtMB(full)),
		ratio:     fmt.Sprintf("%.2f", ratio),
		threshold: "≤ 1.50",
		ok:        ratio <= 1.5,
	})
	return nil
}
