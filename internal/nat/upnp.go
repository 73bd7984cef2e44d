package nat

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// UPnP-IGD. Discovery multicasts an SSDP M-SEARCH to 239.255.255.250:1900
// on the local link; gateways answer by unicast with a LOCATION header
// naming their device description (XML over HTTP); its WANIPConnection (or
// WANPPPConnection) service has a controlURL that takes SOAP calls:
// GetExternalIPAddress, AddPortMapping, DeletePortMapping.
const (
	SSDPAddr        = "239.255.255.250:1900"
	maxDescription  = 256 << 10 // bytes of a device description read at most
	maxSOAPReply    = 64 << 10
	upnpHTTPTimeout = 5 * time.Second
)

var igdServiceTypes = []string{
	"urn:schemas-upnp-org:service:WANIPConnection:2",
	"urn:schemas-upnp-org:service:WANIPConnection:1",
	"urn:schemas-upnp-org:service:WANPPPConnection:1",
}

// UPnP is an Internet Gateway Device found by DiscoverUPnP.
type UPnP struct {
	ControlURL  string     // static after discovery
	ServiceType string     // one of the WAN*Connection service types
	LocalAddr   netip.Addr // our address on the gateway's LAN (the mapping's internal client)
	HTTP        *http.Client
}

// DiscoverUPnP sends SSDP M-SEARCHes to ssdp (normally SSDPAddr) from
// laddr (zero = any) and returns the first gateway whose description has a
// WAN connection service. It gives up when ctx ends.
func DiscoverUPnP(ctx context.Context, ssdp string, laddr netip.Addr) (*UPnP, error) {
	dst, err := net.ResolveUDPAddr("udp4", ssdp)
	if err != nil {
		return nil, fmt.Errorf("upnp: ssdp address: %w", err)
	}
	var la *net.UDPAddr
	if laddr.IsValid() {
		la = &net.UDPAddr{IP: laddr.AsSlice()}
	}
	conn, err := net.ListenUDP("udp4", la)
	if err != nil {
		return nil, fmt.Errorf("upnp: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, 2048)
	for try := 0; ctx.Err() == nil && try < 4; try++ {
		for _, st := range []string{"urn:schemas-upnp-org:device:InternetGatewayDevice:1", "urn:schemas-upnp-org:device:InternetGatewayDevice:2"} {
			msg := "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nST: " + st + "\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\n\r\n"
			if _, err := conn.WriteTo([]byte(msg), dst); err != nil {
				return nil, fmt.Errorf("upnp: m-search: %w", err)
			}
		}
		deadline := time.Now().Add(time.Second << try)
		for {
			conn.SetReadDeadline(deadline)
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				break
			}
			loc := ssdpLocation(buf[:n])
			if loc == "" {
				continue
			}
			g, err := fetchIGD(ctx, loc)
			if err != nil {
				continue
			}
			return g, nil
		}
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("upnp: no gateway found: %w", ctx.Err())
	}
	return nil, errors.New("upnp: no gateway answered")
}

// ssdpLocation returns the LOCATION header of an SSDP reply, or "".
func ssdpLocation(b []byte) string {
	if !bytes.HasPrefix(b, []byte("HTTP/1.1 200")) && !bytes.HasPrefix(b, []byte("HTTP/1.0 200")) {
		return ""
	}
	for _, line := range strings.Split(string(b), "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), "location") {
			v = strings.TrimSpace(v)
			if u, err := url.Parse(v); err == nil && u.Scheme == "http" {
				return v
			}
		}
	}
	return ""
}

type upnpDevice struct {
	Services []struct {
		ServiceType string `xml:"serviceType"`
		ControlURL  string `xml:"controlURL"`
	} `xml:"serviceList>service"`
	Devices []upnpDevice `xml:"deviceList>device"`
}

type upnpRoot struct {
	URLBase string     `xml:"URLBase"`
	Device  upnpDevice `xml:"device"`
}

func (d *upnpDevice) find(st string) string {
	for _, s := range d.Services {
		if strings.TrimSpace(s.ServiceType) == st {
			return strings.TrimSpace(s.ControlURL)
		}
	}
	for i := range d.Devices {
		if u := d.Devices[i].find(st); u != "" {
			return u
		}
	}
	return ""
}

// fetchIGD reads a device description and finds its WAN connection service.
func fetchIGD(ctx context.Context, location string) (*UPnP, error) {
	var local netip.Addr
	hc := &http.Client{Timeout: upnpHTTPTimeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{Timeout: upnpHTTPTimeout}).DialContext(ctx, network, addr)
			if err == nil {
				if ap, perr := netip.ParseAddrPort(c.LocalAddr().String()); perr == nil {
					local = ap.Addr().Unmap()
				}
			}
			return c, err
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, location, nil)
	if err != nil {
		return nil, fmt.Errorf("upnp: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("upnp: get description: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("upnp: description: %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDescription))
	if err != nil {
		return nil, fmt.Errorf("upnp: read description: %w", err)
	}
	var root upnpRoot
	if err := xml.Unmarshal(body, &root); err != nil {
		return nil, fmt.Errorf("upnp: parse description: %w", err)
	}
	base, _ := url.Parse(location)
	if root.URLBase != "" {
		if b, err := url.Parse(strings.TrimSpace(root.URLBase)); err == nil {
			base = b
		}
	}
	for _, st := range igdServiceTypes {
		if cu := root.Device.find(st); cu != "" {
			ref, err := url.Parse(cu)
			if err != nil {
				return nil, fmt.Errorf("upnp: control URL %q: %w", cu, err)
			}
			abs := base.ResolveReference(ref)
			if abs.Scheme != "http" || abs.Host != base.Host {
				// a gateway's control URL pointing elsewhere is not followed
				return nil, fmt.Errorf("upnp: control URL %q is off the gateway", abs)
			}
			return &UPnP{ControlURL: abs.String(), ServiceType: st, LocalAddr: local, HTTP: hc}, nil
		}
	}
	return nil, errors.New("upnp: no WAN connection service in description")
}

// ExternalAddress asks the gateway for its public address.
func (g *UPnP) ExternalAddress(ctx context.Context) (netip.Addr, error) {
	out, err := g.soap(ctx, "GetExternalIPAddress", nil)
	if err != nil {
		return netip.Addr{}, err
	}
	a, err := netip.ParseAddr(strings.TrimSpace(out["NewExternalIPAddress"]))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("upnp: external address %q: %w", out["NewExternalIPAddress"], err)
	}
	return a, nil
}

// AddPortMapping maps external to our internal port for protocol ("tcp" or
// "udp") for lifetime (0 = until removed; some gateways accept only that).
func (g *UPnP) AddPortMapping(ctx context.Context, protocol string, internal, external uint16, lifetime time.Duration, desc string) (Mapping, error) {
	proto, err := upnpProto(protocol)
	if err != nil {
		return Mapping{}, err
	}
	if !g.LocalAddr.IsValid() {
		return Mapping{}, errors.New("upnp: local address unknown")
	}
	_, err = g.soap(ctx, "AddPortMapping", [][2]string{
		{"NewRemoteHost", ""}, {"NewExternalPort", strconv.Itoa(int(external))}, {"NewProtocol", proto},
		{"NewInternalPort", strconv.Itoa(int(internal))}, {"NewInternalClient", g.LocalAddr.String()},
		{"NewEnabled", "1"}, {"NewPortMappingDescription", desc},
		{"NewLeaseDuration", strconv.Itoa(int(lifetime / time.Second))},
	})
	if err != nil {
		return Mapping{}, err
	}
	return Mapping{Protocol: protocol, InternalPort: internal, Lifetime: lifetime, Method: "upnp",
		External: netip.AddrPortFrom(netip.Addr{}, external)}, nil
}

// DeletePortMapping removes the mapping of external port for protocol.
func (g *UPnP) DeletePortMapping(ctx context.Context, protocol string, external uint16) error {
	proto, err := upnpProto(protocol)
	if err != nil {
		return err
	}
	_, err = g.soap(ctx, "DeletePortMapping", [][2]string{
		{"NewRemoteHost", ""}, {"NewExternalPort", strconv.Itoa(int(external))}, {"NewProtocol", proto},
	})
	return err
}

func upnpProto(p string) (string, error) {
	switch p {
	case "tcp":
		return "TCP", nil
	case "udp":
		return "UDP", nil
	}
	return "", fmt.Errorf("upnp: protocol %q, want tcp or udp", p)
}

// UPnPError is a SOAP fault from the gateway.
type UPnPError struct {
	Code        int
	Description string
}

func (e *UPnPError) Error() string { return fmt.Sprintf("upnp: error %d: %s", e.Code, e.Description) }

// soap calls action with args (in order) and returns the response's
// top-level arguments by name.
func (g *UPnP) soap(ctx context.Context, action string, args [][2]string) (map[string]string, error) {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?>` + "\r\n" +
		`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>`)
	fmt.Fprintf(&b, `<u:%s xmlns:u="%s">`, action, g.ServiceType)
	for _, a := range args {
		fmt.Fprintf(&b, "<%s>", a[0])
		xml.EscapeText(&b, []byte(a[1]))
		fmt.Fprintf(&b, "</%s>", a[0])
	}
	fmt.Fprintf(&b, `</u:%s></s:Body></s:Envelope>`, action)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.ControlURL, strings.NewReader(b.String()))
	if err != nil {
		return nil, fmt.Errorf("upnp: %w", err)
	}
	req.Header.Set("Content-Type", `text/xml; charset="utf-8"`)
	req.Header.Set("SOAPAction", `"`+g.ServiceType+"#"+action+`"`)
	hc := g.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: upnpHTTPTimeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("upnp: %s: %w", action, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSOAPReply))
	if err != nil {
		return nil, fmt.Errorf("upnp: %s: read reply: %w", action, err)
	}
	out, fault := parseSOAP(body)
	if resp.StatusCode != http.StatusOK {
		if fault != nil {
			return nil, fmt.Errorf("upnp: %s: %w", action, fault)
		}
		return nil, fmt.Errorf("upnp: %s: %s", action, resp.Status)
	}
	return out, nil
}

// parseSOAP collects the leaf elements of a SOAP reply by local name, and
// the UPnPError of a fault.
func parseSOAP(body []byte) (map[string]string, *UPnPError) {
	out := map[string]string{}
	d := xml.NewDecoder(bytes.NewReader(body))
	var name string
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name = t.Name.Local
			text.Reset()
		case xml.CharData:
			if text.Len() < 1024 {
				text.Write(t)
			}
		case xml.EndElement:
			if name == t.Name.Local && len(out) < 64 {
				out[name] = text.String()
			}
			name = ""
		}
	}
	if c, ok := out["errorCode"]; ok {
		code, _ := strconv.Atoi(strings.TrimSpace(c))
		return out, &UPnPError{Code: code, Description: strings.TrimSpace(out["errorDescription"])}
	}
	return out, nil
}
