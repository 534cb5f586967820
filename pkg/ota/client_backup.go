package ota

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// Backup asks otad for a backup archive of its data (GET /api/v1/backup, a
// user login only) and returns the tar stream; the caller reads it to the
// end and closes it. The stream is complete only when every entry its
// manifest lists has arrived: a server that fails part way aborts the
// connection, which surfaces as a read error.
func (c *Client) Backup(ctx context.Context) (io.ReadCloser, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/api/v1/backup", nil, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/x-tar")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reach otad: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, decodeAPIError(resp)
	}
	return resp.Body, nil
}
