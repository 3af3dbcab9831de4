package enroll

import (
	"net"
	"net/url"
	"slices"
	"strings"
)

func nameList(cn string, dns []string, ips []net.IP, uris []*url.URL, emails []string) []string {
	var out []string
	if cn != "" {
		out = append(out, "cn:"+cn)
	}
	for _, d := range dns {
		out = append(out, "dns:"+strings.ToLower(d))
	}
	for _, ip := range ips {
		out = append(out, "ip:"+ip.String())
	}
	for _, u := range uris {
		out = append(out, "uri:"+u.String())
	}
	for _, e := range emails {
		out = append(out, "email:"+e)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
