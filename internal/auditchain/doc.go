// Package auditchain defines how audit records are chained and checks a
// stored chain. The storage drivers hash with it when they append, and
// `kavach audit verify` checks with it, so both sides agree byte for byte.
//
// # Hash
//
// Each record's hash covers the hash before it and the record's canonical
// encoding:
//
//	Hash = SHA-256(PrevHash || Encode(record))
//
// PrevHash is the previous record's Hash; the first record ever appended
// has the genesis PrevHash, 32 zero bytes. Retention deletes a prefix of
// the chain and keeps the link it deleted last as the anchor, so the
// remaining records still verify from it.
//
// # Canonical encoding (version 1)
//
// One version byte, 0x01, then these fields of storage.AuditRecord in this
// order, with no separators:
//
//	 1 Seq            int
//	 2 ID             str
//	 3 At             int (Unix milliseconds, UTC)
//	 4 Kind           str
//	 5 Event          str
//	 6 PrincipalType  str
//	 7 PrincipalID    str
//	 8 AgentID        str
//	 9 ActingFor      str
//	10 Chain          uint32 count, then count × str
//	11 Action         str
//	12 Resource       str
//	13 ArgsDigest     str
//	14 Result         str
//	15 Reason         str
//	16 LatencyMicros  int
//	17 IP             str
//	18 UserAgent      str
//	19 Extra          str (the JSON bytes as given)
//
// where int is 8 bytes, big-endian two's complement, uint32 is 4 bytes,
// big-endian, and str is a uint32 byte length followed by the bytes
// (UTF-8 as stored, not normalized). Every field has a fixed width or a
// length, so no two records encode alike. PrevHash and Hash themselves are
// not fields: PrevHash enters through the hash input above. A nil and an
// empty Chain or Extra encode alike, as storage does not tell them apart.
//
// A change to the encoding needs a new version byte; records keep the one
// they were hashed with.
//
// # What verification proves
//
// Verify recomputes every hash from the anchor on, so an edited field, a
// deleted record (a gap in Seq), a reordered or renumbered record, or an
// edited PrevHash is reported at the first Seq it breaks. VerifyLog also
// checks that the chain reaches the stored head, which catches records
// deleted from the end. Someone who can rewrite the whole table and the
// head row can forge a consistent chain; publishing the head (Seq and Hash)
// elsewhere from time to time closes that gap.
//
// This package must not import a storage driver or anything outside
// storage and the standard library.
package auditchain
