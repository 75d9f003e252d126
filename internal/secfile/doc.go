// Package secfile reads the small secret and trust files that commands
// and pipeline specs point at: a PEM bundle of CA certificates, and a
// password or token kept on the first line of a file (or of stdin).
//
// Every caller used to read these on its own, with slightly different
// rules (one trimmed a Windows line ending, another did not); keeping the
// rules here makes a file that works for one flag work for all of them.
package secfile
