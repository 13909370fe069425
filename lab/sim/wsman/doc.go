// Package wsman is a WinRM (WS-Management) server: the remote shell protocol that Windows
// speaks on /wsman, enough for masterzen/winrm and other clients to run commands. What a
// command does is the Host's business.
package wsman
