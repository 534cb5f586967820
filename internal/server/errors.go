package server

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/otaship/ota/internal/blob"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// apiError is an error with its HTTP status and stable code. Handlers return
// it (or a store/blob sentinel, mapped below); only errorHandler writes it.
type apiError struct {
	Status  int
	Code    string
	Message string
	// RetryAfter, in seconds, is sent as the Retry-After header when > 0.
	RetryAfter int
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func newError(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, ota.ErrCodeBadRequest, format, args...)
}

// toAPIError maps any error to what the client sees. Unknown errors become
// a generic 500; their text is logged, never sent.
func toAPIError(err error) (*apiError, bool) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae, true
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return newError(he.Code, ota.ErrCodeNotFound, "no such route"), true
		case http.StatusMethodNotAllowed:
			return newError(he.Code, ota.ErrCodeMethod, "method not allowed on this route"), true
		case http.StatusRequestEntityTooLarge:
			return newError(he.Code, ota.ErrCodeTooLarge, "request body too large"), true
		case http.StatusUnauthorized:
			return newError(he.Code, ota.ErrCodeUnauthorized, "missing or invalid token"), true
		}
		if he.Code < 500 {
			return newError(he.Code, ota.ErrCodeBadRequest, "%v", he.Message), true
		}
	}
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, blob.ErrNotFound):
		return newError(http.StatusNotFound, ota.ErrCodeNotFound, "%v", err), true
	case errors.Is(err, store.ErrConflict):
		return newError(http.StatusConflict, ota.ErrCodeConflict, "%v", err), true
	case errors.Is(err, store.ErrNoPrevious):
		return newError(http.StatusConflict, ota.ErrCodeNothingToRoll, "%v", err), true
	case errors.Is(err, store.ErrInvalid):
		return newError(http.StatusUnprocessableEntity, ota.ErrCodeBadRequest, "%v", err), true
	case errors.Is(err, blob.ErrTooLarge):
		return newError(http.StatusRequestEntityTooLarge, ota.ErrCodeTooLarge, "bundle exceeds the server's maximum upload size"), true
	}
	return newError(http.StatusInternalServerError, ota.ErrCodeInternal, "internal error; the server log has details"), false
}

// errorHandler renders every error as the JSON envelope.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	ae, known := toAPIError(err)
	if !known || ae.Status >= 500 {
		s.reqLog(c).Error("request failed", "method", c.Request().Method, "route", c.Path(), "err", err)
	}
	if ae.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", fmt.Sprint(ae.RetryAfter))
	}
	body := ota.ErrorResponse{Code: ae.Code, Message: ae.Message}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(ae.Status)
		return
	}
	_ = c.JSON(ae.Status, body)
}
