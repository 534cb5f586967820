// Command refserver is the benchmarks' reference: the least a server can do
// for the same requests otad answers, on the same machine.
//
//	refserver echo --body FILE --addr-file F   echo/v4 with otad's router middleware
//	                                           (Recover, RequestID); POST /updates and
//	                                           POST /stats answer FILE's bytes as JSON
//	refserver file --path FILE --addr-file F   bare net/http: GET /file is http.ServeFile
//
// Both listen on 127.0.0.1 only, on a free port written to --addr-file, and
// stop on SIGINT/SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "refserver:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: refserver echo|file [flags]")
	}
	fs := flag.NewFlagSet("refserver "+args[0], flag.ContinueOnError)
	addrFile := fs.String("addr-file", "", "write the bound address here once listening")
	body := fs.String("body", "", "echo: file whose bytes every POST answers")
	path := fs.String("path", "", "file: the file GET /file serves")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	var h http.Handler
	switch args[0] {
	case "echo":
		b, err := os.ReadFile(*body)
		if err != nil {
			return fmt.Errorf("read --body: %w", err)
		}
		h = echoHandler(b)
	case "file":
		if _, err := os.Stat(*path); err != nil {
			return fmt.Errorf("--path: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /file", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, *path) })
		h = mux
	default:
		return fmt.Errorf("unknown mode %q: use echo or file", args[0])
	}
	return serve(h, *addrFile)
}

// echoHandler answers with a constant body and does nothing else, behind
// the same middleware otad's router installs (internal/server/routes.go).
func echoHandler(body []byte) http.Handler {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Use(middleware.Recover())
	e.Use(middleware.RequestID())
	answer := func(c echo.Context) error {
		return c.JSONBlob(http.StatusOK, body)
	}
	e.POST("/updates", answer)
	e.POST("/stats", answer)
	return e
}

func serve(h http.Handler, addrFile string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if addrFile != "" {
		if err := os.WriteFile(addrFile, []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
			return fmt.Errorf("write address file: %w", err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// otad's server settings (internal/daemon/serve.go), so the comparison
	// is between handlers, not between server configurations.
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
