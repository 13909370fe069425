package wsman

import (
	"bytes"
	"crypto/rand"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Namespaces of the WS-Management remote shell protocol. Prefixes are free; these URIs are not.
const (
	NSSoap      = "http://www.w3.org/2003/05/soap-envelope"
	NSAddress   = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
	NSTransfer  = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
	NSWSMan     = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
	NSWSManMS   = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
	NSShell     = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
	NSFault     = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
	nsSoap11    = "http://schemas.xmlsoap.org/soap/envelope/"
	anonymousTo = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
)

// Actions the server understands, and the actions of its answers.
const (
	ActionCreate  = NSTransfer + "/Create"
	ActionDelete  = NSTransfer + "/Delete"
	ActionCommand = NSShell + "/Command"
	ActionReceive = NSShell + "/Receive"
	ActionSend    = NSShell + "/Send"
	ActionSignal  = NSShell + "/Signal"

	actionCreateResponse  = NSTransfer + "/CreateResponse"
	actionDeleteResponse  = NSTransfer + "/DeleteResponse"
	actionCommandResponse = NSShell + "/CommandResponse"
	actionReceiveResponse = NSShell + "/ReceiveResponse"
	actionSendResponse    = NSShell + "/SendResponse"
	actionSignalResponse  = NSShell + "/SignalResponse"
	actionWSManFault      = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
	actionAddressingFault = NSAddress + "/fault"
)

// ResourceURICmd is the cmd.exe shell resource; the only one this server serves.
const ResourceURICmd = NSShell + "/cmd"

// Command states and signal codes.
const (
	StateRunning = NSShell + "/CommandState/Running"
	StateDone    = NSShell + "/CommandState/Done"

	SignalTerminate = NSShell + "/signal/terminate"
	SignalCtrlC     = NSShell + "/signal/ctrl_c"
	SignalCtrlBreak = NSShell + "/signal/ctrl_break"
)

// request is one parsed WS-Management message.
type request struct {
	XMLName xml.Name      `xml:"http://www.w3.org/2003/05/soap-envelope Envelope"`
	Header  requestHeader `xml:"http://www.w3.org/2003/05/soap-envelope Header"`
	Body    requestBody   `xml:"http://www.w3.org/2003/05/soap-envelope Body"`
}

type requestHeader struct {
	To               string      `xml:"http://schemas.xmlsoap.org/ws/2004/08/addressing To"`
	Action           string      `xml:"http://schemas.xmlsoap.org/ws/2004/08/addressing Action"`
	MessageID        string      `xml:"http://schemas.xmlsoap.org/ws/2004/08/addressing MessageID"`
	ResourceURI      string      `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd ResourceURI"`
	MaxEnvelopeSize  string      `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd MaxEnvelopeSize"`
	OperationTimeout string      `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd OperationTimeout"`
	SelectorSet      selectorSet `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd SelectorSet"`
	OptionSet        optionSet   `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd OptionSet"`
}

// selectorSet and optionSet are spelled out (not "a>b" tags) so the set element's
// namespace is checked too.
type selectorSet struct {
	Selectors []namedValue `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd Selector"`
}

type optionSet struct {
	Options []namedValue `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd Option"`
}

// namedValue is a Selector or an Option: <w:Selector Name="ShellId">value</w:Selector>.
type namedValue struct {
	Name  string `xml:"Name,attr"`
	Value string `xml:",chardata"`
}

type requestBody struct {
	Shell       *shellBody   `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Shell"`
	CommandLine *commandBody `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell CommandLine"`
	Receive     *receiveBody `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Receive"`
	Send        *sendBody    `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Send"`
	Signal      *signalBody  `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Signal"`
}

type shellBody struct {
	InputStreams  *string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell InputStreams"`
	OutputStreams *string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell OutputStreams"`
	WorkingDir    string  `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell WorkingDirectory"`
}

type commandBody struct {
	CommandID string   `xml:"CommandId,attr"`
	Command   *string  `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Command"`
	Arguments []string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Arguments"`
}

type receiveBody struct {
	Desired []desiredStream `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell DesiredStream"`
}

type desiredStream struct {
	CommandID string `xml:"CommandId,attr"`
	Streams   string `xml:",chardata"`
}

type sendBody struct {
	Streams []sendStream `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Stream"`
}

type sendStream struct {
	Name      string `xml:"Name,attr"`
	CommandID string `xml:"CommandId,attr"`
	End       string `xml:"End,attr"`
	Data      string `xml:",chardata"`
}

type signalBody struct {
	CommandID string `xml:"CommandId,attr"`
	Code      string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Code"`
}

// errVersionMismatch marks an envelope of another SOAP version (1.1).
var errVersionMismatch = errors.New("SOAP envelope namespace is not SOAP 1.2")

// parseRequest decodes one envelope. It never panics on bad input: errors describe what is
// wrong so the caller can answer with a Sender fault.
func parseRequest(data []byte) (*request, error) {
	root, err := firstElement(data)
	if err != nil {
		return nil, err
	}
	if root.Local == "Envelope" && root.Space != NSSoap {
		if root.Space == nsSoap11 {
			return nil, errVersionMismatch
		}
	}
	if root.Local != "Envelope" || root.Space != NSSoap {
		return nil, fmt.Errorf("root element is {%s}%s, want {%s}Envelope", root.Space, root.Local, NSSoap)
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	var req request
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("decoding envelope: %w", err)
	}
	// Anything but whitespace, comments or processing instructions after the envelope is malformed.
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("after envelope: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return nil, fmt.Errorf("second root element <%s> after the envelope", t.Name.Local)
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return nil, errors.New("text after the envelope")
			}
		}
	}
	return &req, nil
}

// firstElement returns the name of the document's root element.
func firstElement(data []byte) (xml.Name, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return xml.Name{}, errors.New("empty document")
		}
		if err != nil {
			return xml.Name{}, fmt.Errorf("reading root element: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t.Name, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return xml.Name{}, errors.New("text before the root element")
			}
		}
	}
}

// selector returns the value of the named selector (case-insensitive name, as Windows).
func (h *requestHeader) selector(name string) (string, bool) {
	return lookupName(h.SelectorSet.Selectors, name)
}

// option returns the value of the named option.
func (h *requestHeader) option(name string) (string, bool) {
	return lookupName(h.OptionSet.Options, name)
}

// lookupName finds a value by name, ignoring case.
func lookupName(set []namedValue, name string) (string, bool) {
	for _, nv := range set {
		if strings.EqualFold(nv.Name, name) {
			return strings.TrimSpace(nv.Value), true
		}
	}
	return "", false
}

// parseDuration reads an xs:duration as WS-Management uses it for OperationTimeout: PnDTnHnMn.nS.
// Years and months are refused: a timeout never needs them and their length is ambiguous.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	orig := s
	bad := func(why string) (time.Duration, error) {
		return 0, fmt.Errorf("duration %q: %s", orig, why)
	}
	if strings.HasPrefix(s, "-") {
		return bad("negative")
	}
	if !strings.HasPrefix(s, "P") {
		return bad("must start with P")
	}
	s = s[1:]
	if s == "" {
		return bad("no components")
	}
	var total float64
	inTime := false
	seen := false
	for s != "" {
		if s[0] == 'T' {
			if inTime {
				return bad("second T")
			}
			inTime = true
			s = s[1:]
			if s == "" {
				return bad("T without time components")
			}
			continue
		}
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		if i == 0 || i == len(s) {
			return bad("number without unit")
		}
		v, err := strconv.ParseFloat(s[:i], 64)
		if err != nil {
			return bad("bad number")
		}
		unit := s[i]
		s = s[i+1:]
		switch {
		case !inTime && unit == 'D':
			total += v * 86400
		case inTime && unit == 'H':
			total += v * 3600
		case inTime && unit == 'M':
			total += v * 60
		case inTime && unit == 'S':
			total += v
		case !inTime && (unit == 'Y' || unit == 'M'):
			return bad("years and months are not accepted")
		default:
			return bad("unknown unit " + string(unit))
		}
		seen = true
	}
	if !seen {
		return bad("no components")
	}
	if total > float64(1<<62)/float64(time.Second) {
		return bad("too long")
	}
	return time.Duration(total * float64(time.Second)), nil
}

// newGUID returns a random (version 4) GUID in the upper-case form Windows uses for ids.
func newGUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on supported platforms; a panic here is a broken OS.
		panic(fmt.Sprintf("wsman: crypto/rand failed: %v", err))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return strings.ToUpper(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
}
