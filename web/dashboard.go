package web

import (
	"embed"
	"fmt"
	"io/fs"
	"net/http"
)

//go:embed assets
var assets embed.FS

// registerDashboard serves the dashboard: index.html at / and its script
// and style sheet under /assets/, all embedded in the binary (no CDN).
func (s *Server) registerDashboard() error {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		return fmt.Errorf("dashboard assets: %w", err)
	}
	index, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		return fmt.Errorf("dashboard assets: %w", err)
	}
	files := http.StripPrefix("/assets/", http.FileServerFS(sub))
	s.Mux.Handle("GET /assets/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	}))
	s.Mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'")
		_, _ = w.Write(index)
	})
	return nil
}
