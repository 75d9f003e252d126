// Package netutil holds small network helpers shared by Sluice's servers.
package netutil
