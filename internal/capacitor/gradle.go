package capacitor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// gradleFiles are the app module's build files, Groovy first as Capacitor
// generates it.
var gradleFiles = []string{"build.gradle", "build.gradle.kts"}

// GradleVersionName returns versionName from android/app/build.gradle (or
// build.gradle.kts): the native version devices send as version_build.
func GradleVersionName(projectDir string) (string, error) {
	appDir := filepath.Join(projectDir, "android", "app")
	for _, name := range gradleFiles {
		path := filepath.Join(appDir, name)
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("read Gradle file: %w", err)
		}
		v, err := parseVersionName(string(data))
		if err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		return v, nil
	}
	return "", fmt.Errorf("no android/app/build.gradle or build.gradle.kts in %s: run `npx cap add android` first", projectDir)
}

// parseVersionName finds `versionName "x"`, `versionName 'x'`,
// `versionName = "x"` or `versionName("x")` outside comments, preferring
// the one in defaultConfig over flavour overrides.
func parseVersionName(src string) (string, error) {
	var (
		found, foundDefault bool
		first, inDefault    string
		firstErr            error
	)
	scanGradle(src, func(rest string, inDefaultConfig bool) {
		v, err := versionNameValue(rest)
		if !found {
			found, first, firstErr = true, v, err
		}
		if inDefaultConfig && !foundDefault && err == nil {
			foundDefault, inDefault = true, v
		}
	})
	switch {
	case foundDefault:
		return inDefault, nil
	case found && firstErr != nil:
		return "", firstErr
	case found:
		return first, nil
	}
	return "", errors.New(`no versionName found: add versionName "1.0.0" to defaultConfig`)
}

// versionNameValue parses what follows the keyword versionName.
func versionNameValue(rest string) (string, error) {
	s := strings.TrimLeft(rest, " \t")
	s = strings.TrimPrefix(s, "=")
	s = strings.TrimLeft(s, " \t")
	s = strings.TrimPrefix(s, "(")
	s = strings.TrimLeft(s, " \t")
	expr := s
	if i := strings.IndexByte(expr, '\n'); i >= 0 {
		expr = expr[:i]
	}
	expr = strings.TrimSpace(expr)
	if s == "" || (s[0] != '"' && s[0] != '\'') {
		return "", fmt.Errorf("versionName is not a quoted string (%s): set it to a literal such as \"1.2.3\"", truncateExpr(expr))
	}
	q := s[0]
	end := strings.IndexByte(s[1:], q)
	if end < 0 {
		return "", fmt.Errorf("versionName has an unterminated string (%s)", truncateExpr(expr))
	}
	v := s[1 : 1+end]
	switch {
	case strings.ContainsAny(v, "\n\\"):
		return "", fmt.Errorf("versionName has an unterminated string (%s)", truncateExpr(expr))
	case q == '"' && strings.Contains(v, "$"):
		return "", fmt.Errorf("versionName is computed (%s): set it to a literal such as \"1.2.3\"", truncateExpr(expr))
	case strings.TrimSpace(v) == "":
		return "", errors.New("versionName is empty")
	case strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '"' || r == '\'' }):
		return "", fmt.Errorf("versionName %q contains quotes or control characters: use a plain version such as \"1.2.3\"", v)
	}
	return strings.TrimSpace(v), nil
}

func truncateExpr(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// scanGradle calls found for each statement that starts with the word
// versionName, with the text after the word and whether it sits inside a
// defaultConfig block. It skips comments and string contents, and tracks
// braces to know the enclosing blocks; that is as much Groovy/Kotlin as
// finding one assignment needs.
func scanGradle(src string, found func(rest string, inDefaultConfig bool)) {
	const keyword = "versionName"
	var (
		stack     []string // block names, "" for anonymous blocks
		lastWord  string   // identifier before a '{'
		lineStart = true   // only whitespace since the last newline or ';'
	)
	inDefault := func() bool {
		for _, b := range stack {
			if b == "defaultConfig" {
				return true
			}
		}
		return false
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n' || c == ';':
			lineStart = true
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case strings.HasPrefix(src[i:], "//"):
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return
			}
			i += end + 4
		case c == '"' || c == '\'':
			i = skipString(src, i)
			lineStart, lastWord = false, ""
		case c == '{':
			stack = append(stack, lastWord)
			lastWord, lineStart = "", true
			i++
		case c == '}':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			lastWord, lineStart = "", true
			i++
		case isIdent(c):
			j := i
			for j < len(src) && (isIdent(src[j]) || src[j] == '.') {
				j++
			}
			word := src[i:j]
			if lineStart && word == keyword {
				found(src[j:], inDefault())
			}
			lastWord, lineStart = word, false
			i = j
		default:
			if c != '(' && c != ')' {
				lastWord = ""
			}
			lineStart = false
			i++
		}
	}
}

// skipString returns the index after the string literal that starts at i,
// handling escapes and Groovy/Kotlin triple quotes.
func skipString(src string, i int) int {
	q := src[i]
	if strings.HasPrefix(src[i:], strings.Repeat(string(q), 3)) {
		end := strings.Index(src[i+3:], strings.Repeat(string(q), 3))
		if end < 0 {
			return len(src)
		}
		return i + 3 + end + 3
	}
	for j := i + 1; j < len(src); j++ {
		switch src[j] {
		case '\\':
			j++
		case q, '\n':
			return j + 1
		}
	}
	return len(src)
}

func isIdent(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
