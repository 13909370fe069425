package sim

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"strings"

	"github.com/wfplab/wfplab/lab/sim/cmdexe"
)

// certutil models -decode, -encode, -hashfile and -addstore, with -f.
func (g *Machine) certutil(_ context.Context, _ *boot, p *cmdexe.Process) int {
	var verb string
	var args []string
	force := false
	for _, a := range p.Args {
		if len(a) > 1 && (a[0] == '-' || a[0] == '/') {
			v := strings.ToLower(a[1:])
			switch {
			case v == "f":
				force = true
			case verb == "":
				verb = v
			default:
				return certFail(p, "-"+v, hresultInvalidArg)
			}
			continue
		}
		args = append(args, a)
	}
	switch verb {
	case "decode":
		return g.certDecode(p, args, force)
	case "encode":
		return g.certEncode(p, args, force)
	case "hashfile":
		return g.certHash(p, args)
	case "addstore":
		return g.certAddStore(p, args)
	case "":
		fmt.Fprint(p.Stdout, "wfplab simulated guest: certutil without a verb (store dump) is not modelled.\r\n")
		return 1
	}
	fmt.Fprintf(p.Stdout, "wfplab simulated guest: certutil -%s is not modelled (-decode, -encode, -hashfile, -addstore are).\r\n", verb)
	return certFail(p, "-"+verb, hresultInvalidArg)
}

// hresult is a certutil failure: the code it prints and exits with, and its text.
type hresult struct {
	code uint32
	tag  string // what certutil prints in the parentheses
	text string
}

var (
	hresultNotFound   = hresult{0x80070002, "WIN32: 2 ERROR_FILE_NOT_FOUND", "The system cannot find the file specified."}
	hresultPath       = hresult{0x80070003, "WIN32: 3 ERROR_PATH_NOT_FOUND", "The system cannot find the path specified."}
	hresultDenied     = hresult{0x80070005, "WIN32: 5 ERROR_ACCESS_DENIED", "Access is denied."}
	hresultExists     = hresult{0x80070050, "WIN32: 80 ERROR_FILE_EXISTS", "The file exists."}
	hresultDiskFull   = hresult{0x80070070, "WIN32: 112 ERROR_DISK_FULL", "There is not enough space on the disk."}
	hresultInvalidArg = hresult{0x80070057, "WIN32: 87 ERROR_INVALID_PARAMETER", "The parameter is incorrect."}
	hresultBadData    = hresult{0x80090005, "-2146893819", "Bad Data."}
	hresultBadAlg     = hresult{0x80090008, "-2146893816", "Invalid algorithm specified."}
	hresultNoObject   = hresult{0x80092009, "-2146885623 CRYPT_E_NO_MATCH", "Cannot find the requested object."}
)

func certFail(p *cmdexe.Process, verb string, h hresult) int {
	fmt.Fprintf(p.Stdout, "CertUtil: %s command FAILED: 0x%08x (%s)\r\nCertUtil: %s\r\n", verb, h.code, h.tag, h.text)
	return int(int32(h.code))
}

func fsHresult(err error) hresult {
	switch {
	case errors.Is(err, cmdexe.ErrPathNotFound):
		return hresultPath
	case errors.Is(err, fs.ErrNotExist):
		return hresultNotFound
	case errors.Is(err, cmdexe.ErrDiskFull):
		return hresultDiskFull
	}
	return hresultDenied
}

func (g *Machine) abs(p *cmdexe.Process, name string) (string, error) {
	return cmdexe.Abs(p.Cwd, name)
}

func (g *Machine) readArg(p *cmdexe.Process, name string) ([]byte, error) {
	path, err := g.abs(p, name)
	if err != nil {
		return nil, err
	}
	return g.fs.ReadFile(path)
}

// writeOut writes an output file, refusing to replace one unless force is set.
func (g *Machine) writeOut(p *cmdexe.Process, name string, data []byte, force bool) error {
	path, err := g.abs(p, name)
	if err != nil {
		return err
	}
	if info, err := g.fs.Stat(path); err == nil {
		if info.Dir {
			return fs.ErrPermission
		}
		if !force {
			return fs.ErrExist
		}
	}
	return g.fs.WriteFile(path, data, false)
}

// decodeBase64 reads base64 text as certutil does: whitespace and line breaks are ignored,
// and PEM-style BEGIN/END lines are skipped.
func decodeBase64(in []byte) ([]byte, error) {
	var b strings.Builder
	for _, line := range strings.Split(string(in), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "-----BEGIN") || strings.HasPrefix(t, "-----END") {
			continue
		}
		for _, r := range t {
			if r != ' ' && r != '\t' && r != '\r' {
				b.WriteRune(r)
			}
		}
	}
	if b.Len() == 0 {
		return nil, errors.New("no base64 data")
	}
	return base64.StdEncoding.DecodeString(b.String())
}

func (g *Machine) certDecode(p *cmdexe.Process, args []string, force bool) int {
	if len(args) != 2 {
		return certFail(p, "-decode", hresultInvalidArg)
	}
	in, err := g.readArg(p, args[0])
	if err != nil {
		return certFail(p, "-decode", fsHresult(err))
	}
	out, err := decodeBase64(in)
	if err != nil {
		return certFail(p, "-decode", hresultBadData)
	}
	if err := g.writeOut(p, args[1], out, force); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return certFail(p, "-decode", hresultExists)
		}
		return certFail(p, "-decode", fsHresult(err))
	}
	fmt.Fprintf(p.Stdout, "Input Length = %d\r\nOutput Length = %d\r\nCertUtil: -decode command completed successfully.\r\n", len(in), len(out))
	return 0
}

func (g *Machine) certEncode(p *cmdexe.Process, args []string, force bool) int {
	if len(args) != 2 {
		return certFail(p, "-encode", hresultInvalidArg)
	}
	in, err := g.readArg(p, args[0])
	if err != nil {
		return certFail(p, "-encode", fsHresult(err))
	}
	var b bytes.Buffer
	b.WriteString("-----BEGIN CERTIFICATE-----\r\n")
	enc := base64.StdEncoding.EncodeToString(in)
	for len(enc) > 64 {
		b.WriteString(enc[:64] + "\r\n")
		enc = enc[64:]
	}
	if enc != "" {
		b.WriteString(enc + "\r\n")
	}
	b.WriteString("-----END CERTIFICATE-----\r\n")
	if err := g.writeOut(p, args[1], b.Bytes(), force); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return certFail(p, "-encode", hresultExists)
		}
		return certFail(p, "-encode", fsHresult(err))
	}
	fmt.Fprintf(p.Stdout, "Input Length = %d\r\nOutput Length = %d\r\nCertUtil: -encode command completed successfully.\r\n", len(in), b.Len())
	return 0
}

// certHash prints a file's hash as Windows 7's certutil does: lower-case hex pairs separated
// by single spaces. The algorithm defaults to SHA1.
func (g *Machine) certHash(p *cmdexe.Process, args []string) int {
	if len(args) < 1 || len(args) > 2 {
		return certFail(p, "-hashfile", hresultInvalidArg)
	}
	alg := "SHA1"
	if len(args) == 2 {
		alg = strings.ToUpper(args[1])
	}
	var h hash.Hash
	switch alg {
	case "SHA1":
		h = sha1.New()
	case "MD5":
		h = md5.New()
	case "SHA256":
		h = sha256.New()
	case "SHA384":
		h = sha512.New384()
	case "SHA512":
		h = sha512.New()
	default:
		return certFail(p, "-hashfile", hresultBadAlg)
	}
	data, err := g.readArg(p, args[0])
	if err != nil {
		if errors.Is(err, cmdexe.ErrIsDir) {
			return certFail(p, "-hashfile", hresultDenied)
		}
		return certFail(p, "-hashfile", fsHresult(err))
	}
	h.Write(data)
	sum := h.Sum(nil)
	pairs := make([]string, len(sum))
	for i, c := range sum {
		pairs[i] = fmt.Sprintf("%02x", c)
	}
	fmt.Fprintf(p.Stdout, "%s hash of file %s:\r\n%s\r\nCertUtil: -hashfile command completed successfully.\r\n", alg, args[0], strings.Join(pairs, " "))
	return 0
}

// certAddStore adds a certificate (DER, PEM or base64) to a machine store. Trust has no
// effect on the model's driver loading: in test-signing mode Windows loads any test-signed
// driver; the stores are kept for completeness.
func (g *Machine) certAddStore(p *cmdexe.Process, args []string) int {
	if len(args) != 2 {
		return certFail(p, "-addstore", hresultInvalidArg)
	}
	store, file := args[0], args[1]
	data, err := g.readArg(p, file)
	if err != nil {
		return certFail(p, "-addstore", fsHresult(err))
	}
	cert, err := x509.ParseCertificate(data)
	if err != nil {
		if blk, _ := pem.Decode(data); blk != nil {
			cert, err = x509.ParseCertificate(blk.Bytes)
		} else if der, derr := decodeBase64(data); derr == nil {
			cert, err = x509.ParseCertificate(der)
		}
	}
	if err != nil {
		return certFail(p, "-addstore", hresultNoObject)
	}
	name := cert.Subject.CommonName
	if name == "" {
		name = cert.Subject.String()
	}
	thumb := sha1.Sum(cert.Raw)
	g.mu.Lock()
	key := strings.ToLower(store)
	if g.stores[key] == nil {
		g.stores[key] = map[[20]byte]string{}
	}
	_, had := g.stores[key][thumb]
	g.stores[key][thumb] = name
	g.mu.Unlock()
	fmt.Fprintf(p.Stdout, "%s\r\n", store)
	if cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) == nil {
		fmt.Fprint(p.Stdout, "Signature matches Public Key\r\n")
	}
	if had {
		fmt.Fprintf(p.Stdout, "Certificate \"%s\" already in store.\r\n", name)
	} else {
		fmt.Fprintf(p.Stdout, "Certificate \"%s\" added to store.\r\n", name)
	}
	fmt.Fprint(p.Stdout, "CertUtil: -addstore command completed successfully.\r\n")
	return 0
}
