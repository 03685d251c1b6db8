package authz

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/kavachos/kavach/internal/seal"
	"github.com/kavachos/kavach/storage"
)

// Signing algorithms a KeyManager can hold keys for.
const (
	AlgEdDSA = "EdDSA" // Ed25519
	AlgES256 = "ES256" // ECDSA P-256 with SHA-256
	AlgRS256 = "RS256" // RSA 2048 PKCS#1 v1.5 with SHA-256, for id_tokens of clients that need it
)

// supportedAlgs is also what the JWS parser admits, before Verify checks
// the caller's list and the key's own algorithm.
var supportedAlgs = []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.RS256}

// rsaBits is the size of generated RSA keys and the least accepted on load.
const rsaBits = 2048

// sealPurposeSigningKeys names the sealing key of signing keys; changing
// it makes every stored key unreadable.
const sealPurposeSigningKeys = "signing-keys"

// maxJWSSize bounds what Verify parses: our tokens are a few hundred bytes
// to a few KiB, and anything larger is refused before any decoding.
const maxJWSSize = 16 << 10

var (
	// ErrInvalidJWS means Verify refused a token: malformed, signed with an
	// algorithm the caller does not allow or that is not its key's, by a
	// key that is unknown or no longer published, or with a bad signature.
	// The wrapped detail is for logs, never for clients.
	ErrInvalidJWS = errors.New("authz: invalid signed token")
	// ErrUnknownKey (wrapping ErrInvalidJWS) means no published key has the
	// token's kid: another node may have rotated, and a Reload may help.
	ErrUnknownKey = fmt.Errorf("%w: unknown or expired key", ErrInvalidJWS)
	// ErrNoSigningKey means Sign was asked for an algorithm the KeyManager
	// holds no current key for.
	ErrNoSigningKey = errors.New("authz: no signing key for algorithm")

	errJWSMalformed = fmt.Errorf("%w: malformed", ErrInvalidJWS)
)

// KeyManager holds the server's signing keys in memory: it signs tokens
// with the current key of each algorithm and verifies tokens against every
// published key without touching the database. Keys live in the store,
// sealed with the server secret; Rotate and Reload are the only calls that
// reach the store. It is safe for concurrent use.
type KeyManager struct {
	store  storage.Store
	sealer *seal.Sealer
	algs   []string
	now    func() time.Time

	mu  sync.Mutex // serializes Reload and Rotate; readers never take it
	set atomic.Pointer[keySet]
}

// keySet is an immutable snapshot of the keys; a change builds a new one.
type keySet struct {
	byKID      map[string]*signingKey
	signing    map[string]*signingKey // by algorithm: the key that signs
	jwks       []byte
	nextExpiry time.Time // earliest ExpiresAt of a key in the set; zero if none
}

type signingKey struct {
	kid       string
	alg       string
	createdAt time.Time
	retiredAt time.Time // zero while the key signs
	expiresAt time.Time // zero until retired; published until then
	*keyMaterial
}

// keyMaterial is the opened key, shared between snapshots so that a Reload
// does not open and parse unchanged keys again.
type keyMaterial struct {
	sealed  []byte
	private crypto.Signer
	public  crypto.PublicKey
	signers sync.Map // typ → jose.Signer
}

// NewKeyManager loads the signing keys from store, opening them with a
// sealer for secret, and generates and stores a key for each algorithm in
// algs that has no current (unretired) one. A key that does not open — a
// different secret, an altered row — is an error, not a reason to make
// new keys. now is the clock (time.Now when nil).
func NewKeyManager(ctx context.Context, store storage.Store, secret string, algs []string, now func() time.Time) (*KeyManager, error) {
	if len(algs) == 0 {
		return nil, errors.New("authz: keys: no signing algorithms configured")
	}
	for i, alg := range algs {
		if !slices.Contains(supportedAlgs, jose.SignatureAlgorithm(alg)) {
			return nil, fmt.Errorf("authz: keys: unsupported signing algorithm %q (want EdDSA, ES256 or RS256)", alg)
		}
		if slices.Contains(algs[:i], alg) {
			return nil, fmt.Errorf("authz: keys: signing algorithm %q listed twice", alg)
		}
	}
	sealer, err := seal.New(secret, sealPurposeSigningKeys)
	if err != nil {
		return nil, fmt.Errorf("authz: keys: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	m := &KeyManager{store: store, sealer: sealer, algs: slices.Clone(algs), now: now}
	m.set.Store(&keySet{})

	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.reloadLocked(ctx); err != nil {
		return nil, err
	}
	var missing []string
	for _, alg := range m.algs {
		if m.set.Load().signing[alg] == nil {
			missing = append(missing, alg)
		}
	}
	if len(missing) == 0 {
		return m, nil
	}
	// Two nodes starting at once on an empty store may both generate a
	// key; both are then published and either may sign, so this is safe
	// once each node has reloaded.
	created := m.now().UTC()
	keys, err := m.generate(missing, created)
	if err != nil {
		return nil, err
	}
	err = store.InTx(ctx, func(tx storage.Store) error {
		for _, k := range keys {
			if err := tx.SigningKeys().Create(ctx, k); err != nil {
				return fmt.Errorf("authz: keys: store new %s key: %w", k.Algorithm, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := m.reloadLocked(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// Rotate makes a new key for each configured algorithm and retires every
// key that signs now: a retired key stops signing at once but stays
// published, and verifiable, for publishFor — which must cover the longest
// lifetime of any token it signed, plus the interval at which other nodes
// Reload (they keep signing with it until they do). publishFor 0 ends old
// keys now (a compromised key), invalidating every token they signed.
func (m *KeyManager) Rotate(ctx context.Context, publishFor time.Duration) error {
	if publishFor < 0 {
		return fmt.Errorf("authz: keys: rotate: negative publication period %v", publishFor)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now().UTC()
	keys, err := m.generate(m.algs, now)
	if err != nil {
		return err
	}
	err = m.store.InTx(ctx, func(tx storage.Store) error {
		// Listing in the transaction retires what other nodes created too.
		current, err := tx.SigningKeys().List(ctx, now)
		if err != nil {
			return fmt.Errorf("authz: keys: rotate: list: %w", err)
		}
		for _, k := range current {
			if k.RetiredAt != nil {
				continue
			}
			if _, err := tx.SigningKeys().Retire(ctx, k.KID, now, now.Add(publishFor)); err != nil {
				return fmt.Errorf("authz: keys: rotate: retire %s: %w", k.KID, err)
			}
		}
		for _, k := range keys {
			if err := tx.SigningKeys().Create(ctx, k); err != nil {
				return fmt.Errorf("authz: keys: rotate: store new %s key: %w", k.Algorithm, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return m.reloadLocked(ctx)
}

// Reload replaces the keys in memory with those in the store, to pick up a
// rotation made by another node. Until it succeeds the old keys stay in
// use.
func (m *KeyManager) Reload(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reloadLocked(ctx)
}

func (m *KeyManager) reloadLocked(ctx context.Context) error {
	now := m.now()
	rows, err := m.store.SigningKeys().List(ctx, now)
	if err != nil {
		return fmt.Errorf("authz: keys: list: %w", err)
	}
	old := m.set.Load()
	keys := make([]*signingKey, 0, len(rows))
	for _, row := range rows {
		k := &signingKey{kid: row.KID, alg: row.Algorithm, createdAt: row.CreatedAt}
		if row.RetiredAt != nil {
			k.retiredAt = *row.RetiredAt
		}
		if row.ExpiresAt != nil {
			k.expiresAt = *row.ExpiresAt
		}
		if prev := old.byKID[row.KID]; prev != nil && prev.alg == row.Algorithm && bytes.Equal(prev.sealed, row.Sealed) {
			k.keyMaterial = prev.keyMaterial
		} else {
			mat, err := m.open(row)
			if err != nil {
				return err
			}
			k.keyMaterial = mat
		}
		keys = append(keys, k)
	}
	set, err := newKeySet(keys, now)
	if err != nil {
		return err
	}
	m.set.Store(set)
	return nil
}

// keys returns the current snapshot, first dropping keys whose
// publication ended since it was built. It never blocks: of concurrent
// callers that prune, one stores its result and the others use their own.
func (m *KeyManager) keys() *keySet {
	s := m.set.Load()
	if s.nextExpiry.IsZero() {
		return s
	}
	now := m.now()
	if now.Before(s.nextExpiry) {
		return s
	}
	keys := make([]*signingKey, 0, len(s.byKID))
	for _, k := range s.byKID {
		keys = append(keys, k)
	}
	pruned, err := newKeySet(keys, now)
	if err != nil {
		// Only JSON encoding of keys that encoded before can fail here;
		// keep serving the old snapshot rather than none.
		return s
	}
	m.set.CompareAndSwap(s, pruned)
	return pruned
}

// newKeySet builds a snapshot of the keys still published at now.
func newKeySet(keys []*signingKey, now time.Time) (*keySet, error) {
	keys = slices.DeleteFunc(slices.Clone(keys), func(k *signingKey) bool {
		return !k.expiresAt.IsZero() && !now.Before(k.expiresAt)
	})
	slices.SortFunc(keys, func(a, b *signingKey) int {
		if c := a.createdAt.Compare(b.createdAt); c != 0 {
			return c
		}
		return bytes.Compare([]byte(a.kid), []byte(b.kid))
	})
	s := &keySet{
		byKID:   make(map[string]*signingKey, len(keys)),
		signing: make(map[string]*signingKey),
	}
	jwks := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(keys))}
	for _, k := range keys {
		s.byKID[k.kid] = k
		// Of several unretired keys of one algorithm (nodes that started or
		// rotated at the same moment), the newest signs, on every node.
		if k.retiredAt.IsZero() {
			s.signing[k.alg] = k
		}
		if !k.expiresAt.IsZero() && (s.nextExpiry.IsZero() || k.expiresAt.Before(s.nextExpiry)) {
			s.nextExpiry = k.expiresAt
		}
		jwks.Keys = append(jwks.Keys, jose.JSONWebKey{Key: k.public, KeyID: k.kid, Algorithm: k.alg, Use: "sig"})
	}
	var err error
	if s.jwks, err = json.Marshal(jwks); err != nil {
		return nil, fmt.Errorf("authz: keys: encode JWKS: %w", err)
	}
	return s, nil
}

// generate makes one new key per algorithm, sealed for storage.
func (m *KeyManager) generate(algs []string, created time.Time) ([]*storage.SigningKey, error) {
	out := make([]*storage.SigningKey, 0, len(algs))
	for _, alg := range algs {
		var priv crypto.Signer
		var err error
		switch alg {
		case AlgEdDSA:
			_, priv, err = ed25519.GenerateKey(rand.Reader)
		case AlgES256:
			priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		case AlgRS256:
			priv, err = rsa.GenerateKey(rand.Reader, rsaBits)
		default:
			err = fmt.Errorf("unsupported algorithm %q", alg)
		}
		if err != nil {
			return nil, fmt.Errorf("authz: keys: generate %s key: %w", alg, err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, fmt.Errorf("authz: keys: encode %s key: %w", alg, err)
		}
		kid := newKID()
		out = append(out, &storage.SigningKey{
			KID:       kid,
			Algorithm: alg,
			Sealed:    m.sealer.Seal(der, []byte(kid)),
			CreatedAt: created,
		})
		clear(der)
	}
	return out, nil
}

// newKID returns 128 random bits, base64url: unique, not secret.
func newKID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// open unseals a stored key (bound to its kid) and checks that it is a key
// of its recorded algorithm.
func (m *KeyManager) open(row storage.SigningKey) (*keyMaterial, error) {
	der, err := m.sealer.Open(row.Sealed, []byte(row.KID))
	if err != nil {
		return nil, fmt.Errorf("authz: keys: open signing key %s (is KAVACH_SECRET the one the keys were made with?): %w", row.KID, err)
	}
	defer clear(der)
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("authz: keys: parse signing key %s: %w", row.KID, err)
	}
	var ok bool
	switch k := parsed.(type) {
	case ed25519.PrivateKey:
		ok = row.Algorithm == AlgEdDSA
	case *ecdsa.PrivateKey:
		ok = row.Algorithm == AlgES256 && k.Curve == elliptic.P256()
	case *rsa.PrivateKey:
		ok = row.Algorithm == AlgRS256 && k.N.BitLen() >= rsaBits
	}
	if !ok {
		return nil, fmt.Errorf("authz: keys: signing key %s is a %T, not a %s key", row.KID, parsed, row.Algorithm)
	}
	signer := parsed.(crypto.Signer)
	return &keyMaterial{sealed: row.Sealed, private: signer, public: signer.Public()}, nil
}

// JWKS returns {"keys":[…]}: the public key of every published key, oldest
// first, each with kid, alg and use "sig". The bytes are shared: callers
// must not modify them.
func (m *KeyManager) JWKS() []byte {
	return m.keys().jwks
}

// Sign returns a compact JWS of claims (encoded as JSON, which must be an
// object) signed with the current key for alg, with kid and typ (e.g.
// "at+jwt", "JWT"; none when empty) in its header.
func (m *KeyManager) Sign(alg, typ string, claims any) (string, error) {
	k := m.keys().signing[alg]
	if k == nil {
		return "", fmt.Errorf("%w %q", ErrNoSigningKey, alg)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("authz: sign: encode claims: %w", err)
	}
	if len(payload) == 0 || payload[0] != '{' {
		return "", errors.New("authz: sign: claims must encode as a JSON object")
	}
	signer, err := k.signer(typ)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("authz: sign with %s: %w", k.kid, err)
	}
	return jws.CompactSerialize()
}

// signer returns the go-jose signer of this key for typ, made once.
func (k *signingKey) signer(typ string) (jose.Signer, error) {
	if s, ok := k.signers.Load(typ); ok {
		return s.(jose.Signer), nil
	}
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.SignatureAlgorithm(k.alg),
		Key:       jose.JSONWebKey{Key: k.private, KeyID: k.kid},
	}, opts)
	if err != nil {
		return nil, fmt.Errorf("authz: signer for %s: %w", k.kid, err)
	}
	actual, _ := k.signers.LoadOrStore(typ, s)
	return actual.(jose.Signer), nil
}

// Verify checks a compact JWS against the keys in memory: its kid must name
// a published key, its alg must be that key's algorithm and be in allowed,
// and its signature must verify. It returns the payload and the header's
// typ ("" when absent); claims (exp, aud, …) are the caller's to check.
// Every refusal wraps ErrInvalidJWS.
func (m *KeyManager) Verify(token string, allowed []string) (payload []byte, typ string, err error) {
	_, payload, typ, err = m.verify(token, allowed)
	return payload, typ, err
}

func (m *KeyManager) verify(token string, allowed []string) (*signingKey, []byte, string, error) {
	if len(token) > maxJWSSize {
		return nil, nil, "", fmt.Errorf("%w: %d bytes is too long", errJWSMalformed, len(token))
	}
	jws, err := jose.ParseSignedCompact(token, supportedAlgs)
	if err != nil {
		var unexpected *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &unexpected) {
			return nil, nil, "", fmt.Errorf("%w: algorithm not allowed", ErrInvalidJWS)
		}
		return nil, nil, "", errJWSMalformed
	}
	if len(jws.Signatures) != 1 {
		return nil, nil, "", errJWSMalformed
	}
	h := jws.Signatures[0].Protected
	if !slices.Contains(allowed, h.Algorithm) {
		return nil, nil, "", fmt.Errorf("%w: algorithm not allowed", ErrInvalidJWS)
	}
	k := m.keys().byKID[h.KeyID]
	if k == nil || !k.published(m.now()) {
		return nil, nil, "", ErrUnknownKey
	}
	if h.Algorithm != k.alg {
		return nil, nil, "", fmt.Errorf("%w: algorithm is not the key's", ErrInvalidJWS)
	}
	payload, err := jws.Verify(k.public)
	if err != nil {
		return nil, nil, "", fmt.Errorf("%w: bad signature", ErrInvalidJWS)
	}
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	return k, payload, typ, nil
}

// published reports whether the key is still in the JWKS at now; keys()
// prunes expired keys too, but only when it builds a new snapshot.
func (k *signingKey) published(now time.Time) bool {
	return k.expiresAt.IsZero() || now.Before(k.expiresAt)
}
