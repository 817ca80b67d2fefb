package cognitofront

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
)

// PoolStore is what answering an SRP sign-in needs of the pool's own
// records: cognito-local cannot do SRP, and Amplify signs in with it
// unless told otherwise.
type PoolStore interface {
	// Client is an app client's pool and its ExplicitAuthFlows; an
	// error if the pool has no such client.
	Client(clientID string) (poolID string, flows []string, err error)
	// User is the user a sign-in names (by user name, sub or email, as
	// the pool finds them): the pool's own name for them and their
	// password. ok is false when the pool has no such user.
	User(poolID, name string) (username, password string, ok bool)
}

// srp is the state of the SRP exchanges begun: by SECRET_BLOCK, each
// used once, within srpTTL.
type srp struct {
	mu       sync.Mutex
	sessions map[string]srpSession
}

type srpSession struct {
	clientID, poolID, username, password string
	a, b, bigB, v                        *big.Int
	expires                              time.Time
}

// srpTTL bounds how long a begun sign-in may wait for its answer.
const srpTTL = 3 * time.Minute

// Cognito's SRP group: RFC 5054's 3072-bit prime, generator 2.
var (
	srpN, _ = new(big.Int).SetString("FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF", 16)
	srpG    = big.NewInt(2)
	srpK    = hashHex(padHex(srpN) + padHex(srpG))
)

// padHex is n in hex as Cognito's clients hash it: an even number of
// digits, and a 00 first when the top bit is set, so it reads as positive.
func padHex(n *big.Int) string {
	h := n.Text(16)
	if len(h)%2 == 1 {
		return "0" + h
	}
	if h[0] >= '8' {
		return "00" + h
	}
	return h
}

// hashHex is SHA-256 of the bytes written in hex h, as a number.
func hashHex(h string) *big.Int {
	b, _ := hex.DecodeString(h)
	sum := sha256.Sum256(b)
	return new(big.Int).SetBytes(sum[:])
}

func hexBytes(h string) []byte { b, _ := hex.DecodeString(h); return b }

// poolName is what Cognito's SRP hashes of a pool: its id after the
// region.
func poolName(poolID string) string { return poolID[strings.IndexByte(poolID, '_')+1:] }

// verifier is the password verifier g^x of a user, x derived as Cognito's
// clients derive it.
func verifier(poolID, username, password string, salt *big.Int) *big.Int {
	inner := sha256.Sum256([]byte(poolName(poolID) + username + ":" + password))
	x := hashHex(padHex(salt) + hex.EncodeToString(inner[:]))
	return new(big.Int).Exp(srpG, x, srpN)
}

// randomInt is a secret of 256 random bytes, below N.
func randomInt() *big.Int { return new(big.Int).Mod(new(big.Int).SetBytes(randomBytes(256)), srpN) }

// srpStart answers InitiateAuth with USER_SRP_AUTH as Cognito does: the
// PASSWORD_VERIFIER challenge, with the salt, B and a secret block.
func (h *Interceptor) srpStart(w http.ResponseWriter, in *cip.InitiateAuthInput) {
	clientID := aws.ToString(in.ClientId)
	poolID, flows, err := h.Pool.Client(clientID)
	if err != nil {
		(&apiError{http.StatusBadRequest, "ResourceNotFoundException", "App Client " + clientID + " not found"}).write(w)
		return
	}
	if !slices.Contains(flows, "ALLOW_USER_SRP_AUTH") {
		invalidParameter("USER_SRP_AUTH flow not enabled for this client").write(w)
		return
	}
	a, ok := new(big.Int).SetString(in.AuthParameters["SRP_A"], 16)
	if !ok || a.Sign() <= 0 || new(big.Int).Mod(a, srpN).Sign() == 0 {
		invalidParameter("SRP_A must be a positive hex number not a multiple of N").write(w)
		return
	}
	username, password, found := h.Pool.User(poolID, in.AuthParameters["USERNAME"])
	if !found {
		// The template's client has PreventUserExistenceErrors.
		notAuthorized().write(w)
		return
	}
	salt := new(big.Int).SetBytes(randomBytes(16))
	v := verifier(poolID, username, password, salt)
	b := randomInt()
	bigB := new(big.Int).Mod(new(big.Int).Add(new(big.Int).Mul(srpK, v), new(big.Int).Exp(srpG, b, srpN)), srpN)
	block := base64.StdEncoding.EncodeToString(randomBytes(64))
	h.srp.begin(block, srpSession{clientID: clientID, poolID: poolID, username: username, password: password,
		a: a, b: b, bigB: bigB, v: v, expires: time.Now().Add(srpTTL)})
	writeJSON(w, map[string]any{
		"ChallengeName": types.ChallengeNameTypePasswordVerifier,
		"ChallengeParameters": map[string]string{
			"SALT": salt.Text(16), "SRP_B": bigB.Text(16), "SECRET_BLOCK": block,
			"USERNAME": username, "USER_ID_FOR_SRP": username,
		},
	})
}

// srpVerify checks the PASSWORD_VERIFIER answer. Proven, the user signs
// in at cognito-local with the password the pool holds, and that answer,
// the tokens, is the caller's.
func (h *Interceptor) srpVerify(w http.ResponseWriter, r *http.Request, in *cip.RespondToAuthChallengeInput) {
	res := in.ChallengeResponses
	s, ok := h.srp.take(res["PASSWORD_CLAIM_SECRET_BLOCK"])
	if !ok || s.clientID != aws.ToString(in.ClientId) || s.username != res["USERNAME"] || res["TIMESTAMP"] == "" {
		notAuthorized().write(w)
		return
	}
	claim, err := base64.StdEncoding.DecodeString(res["PASSWORD_CLAIM_SIGNATURE"])
	if err != nil || !hmac.Equal(claim, s.signature(res["PASSWORD_CLAIM_SECRET_BLOCK"], res["TIMESTAMP"])) {
		notAuthorized().write(w)
		return
	}
	out, err := forward(r, targetPrefix+"InitiateAuth", &cip.InitiateAuthInput{
		AuthFlow: types.AuthFlowTypeUserPasswordAuth, ClientId: in.ClientId, ClientMetadata: in.ClientMetadata,
		AuthParameters: map[string]string{"USERNAME": s.username, "PASSWORD": s.password},
	})
	if err != nil {
		(&apiError{http.StatusInternalServerError, "InternalErrorException", "the sign-in could not be encoded"}).write(w)
		return
	}
	h.Next.ServeHTTP(w, out)
}

// signature is the PASSWORD_CLAIM_SIGNATURE the client must send: an
// HMAC, under the key both sides derive from S, of the pool, the user,
// the secret block and the timestamp.
func (s srpSession) signature(block, timestamp string) []byte {
	u := hashHex(padHex(s.a) + padHex(s.bigB))
	if u.Sign() == 0 {
		return nil
	}
	// S = (A · v^u)^b mod N
	base := new(big.Int).Mod(new(big.Int).Mul(s.a, new(big.Int).Exp(s.v, u, srpN)), srpN)
	secret := new(big.Int).Exp(base, s.b, srpN)
	key, err := hkdf.Key(sha256.New, hexBytes(padHex(secret)), hexBytes(padHex(u)), "Caldera Derived Key", 16)
	if err != nil {
		return nil
	}
	blockBytes, err := base64.StdEncoding.DecodeString(block)
	if err != nil {
		return nil
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(poolName(s.poolID) + s.username))
	mac.Write(blockBytes)
	mac.Write([]byte(timestamp))
	return mac.Sum(nil)
}

func (p *srp) begin(block string, s srpSession) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sessions == nil {
		p.sessions = map[string]srpSession{}
	}
	now := time.Now()
	for k, old := range p.sessions {
		if now.After(old.expires) {
			delete(p.sessions, k)
		}
	}
	p.sessions[block] = s
}

// take ends the exchange of block: an answer is checked once, right or
// wrong, as Cognito checks it.
func (p *srp) take(block string) (srpSession, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.sessions[block]
	delete(p.sessions, block)
	return s, ok && time.Now().Before(s.expires)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func notAuthorized() *apiError {
	return &apiError{http.StatusBadRequest, "NotAuthorizedException", "Incorrect username or password."}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(v)
}
