package coord

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/cogos-dev/coord/subjects"
)

// ErrPermissionDenied: the server refused a subject this client's user may
// not use (reading another agent's handoffs, say). See docs/security.md.
var ErrPermissionDenied = errors.New("coord: permission denied by the server")

// Credentials are the usual ways of logging in to NATS, as the nats CLI's
// flags and environment give them. The zero value logs in with none.
type Credentials struct {
	CredsFile string // --creds, NATS_CREDS: a JWT + nkey seed file
	NKeyFile  string // --nkey, NATS_NKEY: a file holding a user nkey seed (SU...)
	User      string // --user, NATS_USER
	Password  string // --password, NATS_PASSWORD
	Token     string // --token, NATS_TOKEN
	TLSCert   string // --tlscert, NATS_CERT: client certificate (PEM), with TLSKey
	TLSKey    string // --tlskey, NATS_KEY
	TLSCA     string // --tlsca, NATS_CA: CA certificates to verify the server with (PEM)
}

// CredentialsFromEnv reads the nats CLI's environment variables (NATS_CREDS,
// NATS_NKEY, NATS_USER, NATS_PASSWORD, NATS_TOKEN, NATS_CERT, NATS_KEY,
// NATS_CA). Flags should override what it returns.
func CredentialsFromEnv() Credentials {
	return Credentials{
		CredsFile: os.Getenv("NATS_CREDS"),
		NKeyFile:  os.Getenv("NATS_NKEY"),
		User:      os.Getenv("NATS_USER"),
		Password:  os.Getenv("NATS_PASSWORD"),
		Token:     os.Getenv("NATS_TOKEN"),
		TLSCert:   os.Getenv("NATS_CERT"),
		TLSKey:    os.Getenv("NATS_KEY"),
		TLSCA:     os.Getenv("NATS_CA"),
	}
}

// AddFlags registers the nats CLI's credential flags on fs (--creds,
// --nkey, --user, --password, --token, --tlscert, --tlskey, --tlsca), each
// defaulting to its environment variable (CredentialsFromEnv), and fills cr
// when fs is parsed.
func (cr *Credentials) AddFlags(fs *flag.FlagSet) {
	env := CredentialsFromEnv()
	fs.StringVar(&cr.CredsFile, "creds", env.CredsFile, "NATS credentials file (JWT and nkey seed) [NATS_CREDS]")
	fs.StringVar(&cr.NKeyFile, "nkey", env.NKeyFile, "file holding the NATS user nkey seed [NATS_NKEY]")
	fs.StringVar(&cr.User, "user", env.User, "NATS user name [NATS_USER]")
	fs.StringVar(&cr.Password, "password", env.Password, "NATS password [NATS_PASSWORD]")
	fs.StringVar(&cr.Token, "token", env.Token, "NATS authentication token [NATS_TOKEN]")
	fs.StringVar(&cr.TLSCert, "tlscert", env.TLSCert, "TLS client certificate (PEM) [NATS_CERT]")
	fs.StringVar(&cr.TLSKey, "tlskey", env.TLSKey, "TLS client key (PEM) [NATS_KEY]")
	fs.StringVar(&cr.TLSCA, "tlsca", env.TLSCA, "CA certificates to verify the server with (PEM) [NATS_CA]")
}

// Options turns the credentials into client options (for coord.New). It
// fails with ErrInvalidOption on conflicting or incomplete settings (two
// ways of logging in, a certificate without its key, a file that cannot be
// read).
func (cr Credentials) Options() ([]Option, error) {
	var opts []Option
	ways := 0
	if cr.CredsFile != "" {
		ways++
		opts = append(opts, WithCreds(cr.CredsFile))
	}
	if cr.NKeyFile != "" {
		ways++
		opts = append(opts, WithNKey(cr.NKeyFile))
	}
	if cr.User != "" || cr.Password != "" {
		ways++
		opts = append(opts, WithUserPassword(cr.User, cr.Password))
	}
	if cr.Token != "" {
		ways++
		opts = append(opts, WithToken(cr.Token))
	}
	if ways > 1 {
		return nil, fmt.Errorf("%w: give one of creds, nkey, user/password or token", ErrInvalidOption)
	}
	if cr.TLSCert != "" || cr.TLSKey != "" || cr.TLSCA != "" {
		opts = append(opts, WithTLS(cr.TLSCert, cr.TLSKey, cr.TLSCA))
	}
	var o options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	return opts, nil
}

// NATSOptions is Options for code that connects with nats.go directly.
func (cr Credentials) NATSOptions() ([]nats.Option, error) {
	opts, err := cr.Options()
	if err != nil {
		return nil, err
	}
	var o options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	return o.natsOpts, nil
}

func readable(what, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalidOption, what, err)
	}
	return f.Close()
}

// WithCreds logs in with a NATS credentials file (a user JWT and its nkey
// seed, as `nsc` writes them).
func WithCreds(file string) Option {
	return func(o *options) error {
		if err := readable("creds file", file); err != nil {
			return err
		}
		o.natsOpts = append(o.natsOpts, nats.UserCredentials(file))
		return nil
	}
}

// WithNKey logs in with the user nkey whose seed (SU...) is in file.
func WithNKey(seedFile string) Option {
	return func(o *options) error {
		opt, err := nats.NkeyOptionFromSeed(seedFile)
		if err != nil {
			return fmt.Errorf("%w: nkey seed file: %w", ErrInvalidOption, err)
		}
		o.natsOpts = append(o.natsOpts, opt)
		return nil
	}
}

// WithUserPassword logs in with a user name and password.
func WithUserPassword(user, password string) Option {
	return func(o *options) error {
		if user == "" || password == "" {
			return fmt.Errorf("%w: user and password go together", ErrInvalidOption)
		}
		o.natsOpts = append(o.natsOpts, nats.UserInfo(user, password))
		return nil
	}
}

// WithToken logs in with an authentication token.
func WithToken(token string) Option {
	return func(o *options) error {
		if token == "" {
			return fmt.Errorf("%w: empty token", ErrInvalidOption)
		}
		o.natsOpts = append(o.natsOpts, nats.Token(token))
		return nil
	}
}

// WithTLS connects over TLS: caFile (PEM) verifies the server, certFile and
// keyFile (PEM, together) present a client certificate. Empty strings leave
// a part out; the system roots verify the server when caFile is empty.
func WithTLS(certFile, keyFile, caFile string) Option {
	return func(o *options) error {
		if (certFile == "") != (keyFile == "") {
			return fmt.Errorf("%w: a TLS client certificate needs its key (and the key its certificate)", ErrInvalidOption)
		}
		for what, f := range map[string]string{"TLS certificate": certFile, "TLS key": keyFile, "TLS CA": caFile} {
			if f != "" {
				if err := readable(what, f); err != nil {
					return err
				}
			}
		}
		if certFile != "" {
			o.natsOpts = append(o.natsOpts, nats.ClientCert(certFile, keyFile))
		}
		if caFile != "" {
			o.natsOpts = append(o.natsOpts, nats.RootCAs(caFile))
		}
		o.natsOpts = append(o.natsOpts, nats.Secure())
		return nil
	}
}

// WithTLSConfig connects over TLS with cfg (certificates held in memory).
func WithTLSConfig(cfg *tls.Config) Option {
	return func(o *options) error {
		if cfg == nil {
			return fmt.Errorf("%w: nil TLS config", ErrInvalidOption)
		}
		o.natsOpts = append(o.natsOpts, nats.Secure(cfg))
		return nil
	}
}

// inboxOption makes replies to this client arrive under the agent's own
// inbox prefix (subjects.InboxPrefix), the only subjects its user may
// subscribe to when the server enforces coord's permissions.
func inboxOption(ns, agent string) (nats.Option, error) {
	p, err := subjects.InboxPrefix(ns, agent)
	if err != nil {
		return nil, err
	}
	return nats.CustomInboxPrefix(p), nil
}

// isPermissionViolation reports whether err is the server's refusal of subj.
func isPermissionViolation(err error, subj string) bool {
	return err != nil && errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), `"`+subj+`"`)
}

// Provision creates every bucket and stream coord uses (claims and waiters
// exist once New returns; this adds checkpoints, broadcasts and handoffs).
// Under coord's permissions agents may not create them: an administrator
// runs this once (`coord-agent` as the admin user does).
func (c *Client) Provision(ctx context.Context) error {
	if c.isClosed() {
		return ErrClosed
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	if _, err := c.checkpointBucket(ctx); err != nil {
		return err
	}
	if _, err := c.broadcastStream(ctx); err != nil {
		return err
	}
	_, err := c.handoffStream(ctx)
	return err
}

// deniedHint explains a failure that the server's refusal of a subject
// caused (an agent's user may not create coord's buckets and streams): it
// wraps ErrPermissionDenied and says who can fix it.
func (c *Client) deniedHint(err error) error {
	last := c.nc.LastError()
	if last == nil || !errors.Is(last, nats.ErrPermissionViolation) {
		return err
	}
	return fmt.Errorf("%w: %w (%v; an administrator creates coord's buckets and streams: Client.Provision, docs/security.md)", ErrPermissionDenied, err, last)
}
