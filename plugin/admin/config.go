package admin

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/opa-pat/opa-pat/plugin/cfgkeys"
)

// DecisionQuery is the authorization policy's entrypoint.
const DecisionQuery = "data.pat.admin.decision"

// ApprovalQuery is the effective approval policy of input.org: whether
// fine-grained tokens of the organization without a grant reach it
// (SEMANTICS.md rule 20), for the list and the revocation of its tokens.
const ApprovalQuery = "data.pat.admin.approval.value"

// ErrInvalidConfig wraps every configuration error of the admin API.
var ErrInvalidConfig = errors.New("invalid configuration for plugins.pat.admin")

// Config is plugins.pat.admin:
//
//	admin:
//	  addr: 127.0.0.1:8282              # where the API listens (required)
//	  url: https://pat.example.com/api  # the public base URL, for Link headers and *_url fields
//
// Without url the links are built from the request's Host header over http.
type Config struct {
	Addr string `json:"addr"`
	URL  string `json:"url,omitempty"`

	baseURL string // URL without a trailing slash
}

// ParseConfig reads plugins.pat.admin (JSON or YAML) and checks it. Errors
// name the key and quote the value.
func ParseConfig(raw []byte) (*Config, error) {
	var c Config
	if err := cfgkeys.Decode(raw, &c, "admin"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if err := c.validateAndInjectDefaults(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return &c, nil
}

func (c *Config) validateAndInjectDefaults() error {
	if strings.TrimSpace(c.Addr) == "" {
		return errors.New(`admin.addr: missing value (e.g. "127.0.0.1:8282")`)
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("admin.addr: %q is not host:port: %w", c.Addr, err)
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("admin.url: %q is not an http(s) URL", c.URL)
		}
		c.baseURL = strings.TrimRight(c.URL, "/")
	}
	return nil
}
