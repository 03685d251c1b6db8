package auditchain

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/kavachos/kavach/storage"
)

// Version is the first byte of every encoding this package produces.
const Version = 1

// HashSize is the length of every Hash and PrevHash.
const HashSize = sha256.Size

// Genesis returns the PrevHash of the first record: HashSize zero bytes.
func Genesis() []byte { return make([]byte, HashSize) }

// Encode appends the canonical encoding of r (see the package
// documentation) to dst and returns the result. It reads neither PrevHash
// nor Hash.
func Encode(dst []byte, r *storage.AuditRecord) []byte {
	dst = append(dst, Version)
	dst = appendInt(dst, r.Seq)
	dst = appendStr(dst, r.ID)
	dst = appendInt(dst, r.At.UnixMilli())
	dst = appendStr(dst, r.Kind)
	dst = appendStr(dst, r.Event)
	dst = appendStr(dst, r.PrincipalType)
	dst = appendStr(dst, r.PrincipalID)
	dst = appendStr(dst, r.AgentID)
	dst = appendStr(dst, r.ActingFor)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(r.Chain)))
	for _, c := range r.Chain {
		dst = appendStr(dst, c)
	}
	dst = appendStr(dst, r.Action)
	dst = appendStr(dst, r.Resource)
	dst = appendStr(dst, r.ArgsDigest)
	dst = appendStr(dst, r.Result)
	dst = appendStr(dst, r.Reason)
	dst = appendInt(dst, r.LatencyMicros)
	dst = appendStr(dst, r.IP)
	dst = appendStr(dst, r.UserAgent)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(r.Extra)))
	dst = append(dst, r.Extra...)
	return dst
}

// Hash returns SHA-256(prev || Encode(r)): the Hash of r when prev is its
// PrevHash.
func Hash(prev []byte, r *storage.AuditRecord) []byte {
	buf := make([]byte, 0, 512)
	buf = append(buf, prev...)
	buf = Encode(buf, r)
	sum := sha256.Sum256(buf)
	return sum[:]
}

func appendInt(dst []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(v))
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}
