// Package auth holds who may talk to Sluice: principals and the SCRAM
// credentials that authenticate them over SASL (SCRAM-SHA-256,
// SCRAM-SHA-512, and PLAIN checked against the same stored credentials).
//
// Credentials are stored salted and hashed, never as passwords, in the
// compacted internal topic __sluice_users of the embedded log: one record
// per user and mechanism holding the salt, the iteration count and the
// RFC 5802 StoredKey and ServerKey. That is all a server needs to run a
// SCRAM exchange, and it does not let anyone who reads it log in.
//
// The Kafka listener (package kafka) uses a Store to authenticate SASL
// connections and serves Kafka's AlterUserScramCredentials and
// DescribeUserScramCredentials from it; `sluice user` manages it.
//
// It also holds what principals may do: Kafka ACLs (ACL, Filter), stored
// in the compacted internal topic __sluice_acls by an ACLStore, and the
// Authorizer that decides requests against them as Kafka's standard
// authorizer does (super users, DENY before ALLOW, implied operations,
// wildcard principal, host and resource, literal and prefixed patterns).
// The kafka package enforces it per API; `sluice acl` manages the ACLs.
package auth
