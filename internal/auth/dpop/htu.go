package dpop

import (
	"net/http"
	"net/url"
	"strings"
)

// requestURI is the request's URI as the client addressed the gateway,
// without query and fragment: https (the gateway serves HTTPS only; plain
// HTTP only redirects), the Host header, and the escaped path.
func requestURI(r *http.Request) string {
	return "https://" + r.Host + r.URL.EscapedPath()
}

// normalizeURI normalizes an absolute http(s) URI for comparison, per RFC
// 9449 §4.3 step 9 and RFC 3986 §6.2.2-6.2.3: scheme and host lower-cased,
// the default port and an empty port dropped, percent-encodings of
// unreserved characters decoded and others upper-cased, dot segments
// removed, an empty path made "/", query and fragment dropped. URIs with
// user info, or that are not absolute http(s) URIs, do not normalize.
func normalizeURI(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.User != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", false
	}
	host := strings.ToLower(u.Host)
	if u.Scheme == "https" {
		host = strings.TrimSuffix(host, ":443")
	} else {
		host = strings.TrimSuffix(host, ":80")
	}
	host = strings.TrimSuffix(host, ":")
	path, ok := normalizePercent(u.EscapedPath())
	if !ok {
		return "", false
	}
	return u.Scheme + "://" + host + removeDotSegments(path), true
}

// normalizePercent decodes percent-encoded unreserved characters and
// upper-cases the hex digits of the others (RFC 3986 §6.2.2.1-2).
func normalizePercent(p string) (string, bool) {
	if !strings.Contains(p, "%") {
		return p, true
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			b.WriteByte(p[i])
			continue
		}
		if i+2 >= len(p) || unhex(p[i+1]) < 0 || unhex(p[i+2]) < 0 {
			return "", false
		}
		c := byte(unhex(p[i+1])<<4 | unhex(p[i+2]))
		if isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			b.WriteString(strings.ToUpper(p[i : i+3]))
		}
		i += 2
	}
	return b.String(), true
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// removeDotSegments is RFC 3986 §5.2.4 for an absolute path; "" becomes
// "/".
func removeDotSegments(p string) string {
	if p == "" {
		return "/"
	}
	if !strings.Contains(p, ".") {
		return p
	}
	segs := strings.Split(p, "/")[1:] // p starts with "/"
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}
