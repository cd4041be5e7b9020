package authz

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// User is one login of a nats.conf authorization block: a user name and
// password, or an nkey. Permissions nil means everything (an administrator).
type User struct {
	Name     string // user name (password logins)
	Password string // plain text or a bcrypt hash ($2a$...)
	NKey     string // public user nkey (U...), instead of Name/Password
	// Seed is the nkey's private seed (SU...), never rendered: hand it to
	// the agent (coord.WithNKey reads it from a file).
	Seed        string
	Permissions *server.Permissions
}

// Agent returns the user of agent in ns with a fresh random password.
func Agent(ns, agent string, opts Options) (User, error) {
	p, err := Permissions(ns, agent, opts)
	if err != nil {
		return User{}, err
	}
	pw, err := Password()
	if err != nil {
		return User{}, err
	}
	return User{Name: agent, Password: pw, Permissions: p}, nil
}

// AgentNKey returns an nkey user of agent in ns with a fresh key pair.
func AgentNKey(ns, agent string, opts Options) (User, error) {
	p, err := Permissions(ns, agent, opts)
	if err != nil {
		return User{}, err
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return User{}, fmt.Errorf("authz: creating nkey: %w", err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return User{}, fmt.Errorf("authz: creating nkey: %w", err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return User{}, fmt.Errorf("authz: creating nkey: %w", err)
	}
	return User{NKey: pub, Seed: string(seed), Permissions: p}, nil
}

// Admin returns an administrator (no restrictions: provisions the buckets
// and streams, reads everything) with a fresh random password.
func Admin(name string) (User, error) {
	pw, err := Password()
	if err != nil {
		return User{}, err
	}
	return User{Name: name, Password: pw}, nil
}

// Password returns 24 random bytes, base64url: 192 bits.
func Password() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("authz: random password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Render writes users as a nats.conf authorization block. Every string is
// quoted, so names holding any character survive.
func Render(users []User) (string, error) {
	var b strings.Builder
	b.WriteString("authorization {\n  users = [\n")
	for _, u := range users {
		switch {
		case u.NKey != "" && (u.Name != "" || u.Password != ""):
			return "", fmt.Errorf("%w: user %q has both an nkey and a name/password", ErrInvalid, u.Name)
		case u.NKey != "":
			if !nkeys.IsValidPublicUserKey(u.NKey) {
				return "", fmt.Errorf("%w: %q is not a public user nkey", ErrInvalid, u.NKey)
			}
			fmt.Fprintf(&b, "    { nkey: %s", quote(u.NKey))
		case u.Name == "" || u.Password == "":
			return "", fmt.Errorf("%w: a user needs a name and a password, or an nkey", ErrInvalid)
		default:
			fmt.Fprintf(&b, "    { user: %s, password: %s", quote(u.Name), quote(u.Password))
		}
		if u.Permissions != nil {
			b.WriteString(", permissions: {\n")
			writeSide(&b, "publish", u.Permissions.Publish)
			writeSide(&b, "subscribe", u.Permissions.Subscribe)
			b.WriteString("      }")
		}
		b.WriteString(" }\n")
	}
	b.WriteString("  ]\n}\n")
	return b.String(), nil
}

func writeSide(b *strings.Builder, side string, p *server.SubjectPermission) {
	if p == nil {
		return
	}
	fmt.Fprintf(b, "        %s: {\n", side)
	for _, kind := range []struct {
		name string
		list []string
	}{{"allow", p.Allow}, {"deny", p.Deny}} {
		if len(kind.list) == 0 {
			continue
		}
		fmt.Fprintf(b, "          %s: [\n", kind.name)
		for _, s := range kind.list {
			fmt.Fprintf(b, "            %s\n", quote(s))
		}
		b.WriteString("          ]\n")
	}
	b.WriteString("        }\n")
}

// quote writes s as a nats.conf double-quoted string.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`, "\r", `\r`)
	return `"` + r.Replace(s) + `"`
}
