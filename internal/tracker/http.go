package tracker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultUserAgent is sent to HTTP trackers when Client.UserAgent is empty.
const DefaultUserAgent = "shoal/0.1"

// maxScrapeBatch is how many info-hashes go in one HTTP scrape request
// (keeps URLs well under common 8 KiB request-line limits).
const maxScrapeBatch = 64

// defaultHTTP is shared by every Client whose HTTP field is nil.
var defaultHTTP = &http.Client{
	Timeout: HTTPTimeout,
	Transport: &http.Transport{
		Proxy:                  nil, // no proxy picked up from the environment
		DialContext:            (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  HTTPTimeout,
		MaxIdleConns:           32,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		ForceAttemptHTTP2:      true,
	},
	CheckRedirect: checkRedirect,
}

func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > MaxRedirects {
		return fmt.Errorf("stopped after %d redirects", MaxRedirects)
	}
	if s := req.URL.Scheme; s != "http" && s != "https" {
		return fmt.Errorf("redirect to unsupported scheme %q", s)
	}
	return nil
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}

// isUnreserved reports whether b may appear unescaped in a query (RFC 3986).
func isUnreserved(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
		b == '-' || b == '.' || b == '_' || b == '~'
}

// appendEscaped percent-encodes every byte of s that is not unreserved.
func appendEscaped(dst []byte, s []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, b := range s {
		if isUnreserved(b) {
			dst = append(dst, b)
		} else {
			dst = append(dst, '%', hex[b>>4], hex[b&15])
		}
	}
	return dst
}

// appendQuery appends our parameters after any query already in the URL
// (private trackers put passkeys there).
func appendQuery(u *url.URL, params []byte) string {
	v := *u
	v.Fragment, v.RawFragment = "", ""
	if v.RawQuery != "" {
		v.RawQuery += "&" + string(params)
	} else {
		v.RawQuery = string(params)
	}
	return v.String()
}

// announceQuery builds the announce parameters (BEP 3, BEP 23, BEP 7).
func announceQuery(req *AnnounceRequest) []byte {
	up, down, left := req.counters()
	q := make([]byte, 0, 256)
	q = append(q, "info_hash="...)
	q = appendEscaped(q, req.InfoHash[:])
	q = append(q, "&peer_id="...)
	q = appendEscaped(q, req.PeerID[:])
	q = append(q, "&port="...)
	q = strconv.AppendUint(q, uint64(req.Port), 10)
	q = append(q, "&uploaded="...)
	q = strconv.AppendInt(q, up, 10)
	q = append(q, "&downloaded="...)
	q = strconv.AppendInt(q, down, 10)
	q = append(q, "&left="...)
	q = strconv.AppendInt(q, left, 10)
	q = append(q, "&compact=1"...)
	q = append(q, "&key="...)
	q = fmt.Appendf(q, "%08X", req.Key)
	if req.NumWant >= 0 {
		q = append(q, "&numwant="...)
		q = strconv.AppendInt(q, int64(req.NumWant), 10)
	}
	if ev := req.Event.String(); ev != "" {
		q = append(q, "&event="...)
		q = append(q, ev...)
	}
	if req.IP.IsValid() {
		q = append(q, "&ip="...)
		q = appendEscaped(q, []byte(req.IP.Unmap().String()))
	}
	return q
}

func (c *Client) httpAnnounce(ctx context.Context, u *url.URL, req *AnnounceRequest) (*AnnounceResponse, error) {
	body, err := c.httpGet(ctx, appendQuery(u, announceQuery(req)))
	if err != nil {
		return nil, err
	}
	return parseHTTPResponse(body)
}

// httpGet fetches target with a capped body. A non-200 status is an error,
// but a bencoded "failure reason" in its body wins (some trackers send
// failures with 4xx statuses).
func (c *Client) httpGet(ctx context.Context, target string) ([]byte, error) {
	ctx, cancel := withTimeout(ctx, HTTPTimeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	ua := c.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	hreq.Header.Set("User-Agent", ua)
	resp, err := c.httpClient().Do(hreq)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL holds the passkey; we add a redacted one
		}
		return nil, fmt.Errorf("http: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodySize+1))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if len(body) > MaxBodySize {
		return nil, fmt.Errorf("response body exceeds %d bytes", MaxBodySize)
	}
	if resp.StatusCode != http.StatusOK {
		var f struct {
			Failure *string `bencode:"failure reason"`
		}
		if decodeDict(body, &f) == nil && f.Failure != nil {
			return nil, &FailureError{Reason: *f.Failure}
		}
		return nil, fmt.Errorf("tracker returned HTTP status %s", resp.Status)
	}
	return body, nil
}

// ScrapeURL derives an HTTP tracker's scrape URL (BEP 48): the last path
// element must start with "announce", which becomes "scrape"; the query is
// kept. Otherwise it returns ErrScrapeUnsupported.
func ScrapeURL(announceURL string) (string, error) {
	u, err := url.Parse(announceURL)
	if err != nil {
		return "", fmt.Errorf("tracker: parse announce URL: %w", err)
	}
	s, err := scrapeURL(u)
	if err != nil {
		return "", err
	}
	return s.String(), nil
}

func scrapeURL(u *url.URL) (*url.URL, error) {
	i := strings.LastIndexByte(u.Path, '/')
	if i < 0 || !strings.HasPrefix(u.Path[i+1:], "announce") {
		return nil, ErrScrapeUnsupported
	}
	s := *u
	s.Path = u.Path[:i+1] + "scrape" + u.Path[i+1+len("announce"):]
	s.RawPath = ""
	s.Fragment, s.RawFragment = "", ""
	return &s, nil
}

func (c *Client) httpScrape(ctx context.Context, u *url.URL, hashes [][20]byte) (map[[20]byte]ScrapeResult, error) {
	su, err := scrapeURL(u)
	if err != nil {
		return nil, err
	}
	out := make(map[[20]byte]ScrapeResult, len(hashes))
	for len(hashes) > 0 {
		batch := hashes[:min(len(hashes), maxScrapeBatch)]
		hashes = hashes[len(batch):]
		var q []byte
		for i, h := range batch {
			if i > 0 {
				q = append(q, '&')
			}
			q = append(q, "info_hash="...)
			q = appendEscaped(q, h[:])
		}
		body, err := c.httpGet(ctx, appendQuery(su, q))
		if err != nil {
			return nil, err
		}
		if err := parseHTTPScrape(body, batch, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}
