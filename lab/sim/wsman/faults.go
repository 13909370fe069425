package wsman

import (
	"bytes"
	"net/http"
	"strconv"
)

// Texts and codes of the faults Windows sends, as captured from real hosts (masterzen/winrm,
// pywinrm, pypsrp and WinRM-gem fixtures) where such captures exist. Windows ends its texts
// with trailing spaces; they are part of the text.
const (
	// TimedOutReason is the Reason of the Receive timeout fault; clients match on "OperationTimeout".
	TimedOutReason = "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  "
	// CodeTimedOut is the f:WSManFault Code of the Receive timeout (ERROR_WSMAN_OPERATION_TIMEDOUT).
	CodeTimedOut = 2150858793
	// InternalErrorReason is the Reason of an internal error in the service: a transient failure.
	InternalErrorReason = "The WS-Management service cannot process the request because of an internal error. "
	// CodeInternalError is E_FAIL as an HRESULT.
	CodeInternalError = 2147500037
	// CodeShellNotFound is the Code of an unknown ShellId or CommandId (0x8033805B).
	CodeShellNotFound = 2150858843
	// CodeMaxShells is the Code of the MaxShellsPerUser quota fault.
	CodeMaxShells = 2150859173
	// codeInvalidParameter is E_INVALIDARG as an HRESULT (Win32 error 87).
	codeInvalidParameter = 2147942487

	invalidSelectorsReason = "The WS-Management service cannot process the request because the request contained invalid selectors for the resource. "
	faultDetailBase        = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/"
	winrsProvider          = "Shell cmd plugin"
	winrsProviderPath      = `%systemroot%\system32\winrscmd.dll`
)

// fault is one SOAP 1.2 fault as WinRM shapes it.
type fault struct {
	status      int    // HTTP status: 500, or 413 for an oversize envelope
	action      string // a:Action of the fault message
	code        string // "Sender", "Receiver" or "VersionMismatch" (s: namespace)
	subcode     string // qualified with a prefix the envelope declares ("w:", "a:"), or ""
	reason      string
	faultDetail string // w:FaultDetail URI, or ""
	wsmanCode   uint32 // f:WSManFault Code; 0 leaves the attribute out (no capture to copy it from)
	message     string // f:Message text (defaults to reason); f:WSManFault appears when code or message is set
	provider    bool   // wrap message in f:ProviderFault as the cmd shell plugin does
}

func faultTimedOut() *fault {
	return &fault{status: http.StatusInternalServerError, action: actionWSManFault, code: "Receiver",
		subcode: "w:TimedOut", reason: TimedOutReason, wsmanCode: CodeTimedOut}
}

func faultShellNotFound(shellID string) *fault {
	return &fault{status: http.StatusInternalServerError, action: actionWSManFault, code: "Sender",
		subcode: "w:InvalidSelectors", reason: invalidSelectorsReason,
		faultDetail: faultDetailBase + "UnexpectedSelectors", wsmanCode: CodeShellNotFound,
		message: "The request for the Windows Remote Shell with ShellId " + shellID +
			" failed because the shell was not found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the server. Provide the correct ShellId or create a new shell and retry the operation. "}
}

func faultCommandNotFound() *fault {
	return &fault{status: http.StatusInternalServerError, action: actionWSManFault, code: "Sender",
		subcode: "w:InvalidSelectors", reason: invalidSelectorsReason,
		faultDetail: faultDetailBase + "UnexpectedSelectors", wsmanCode: CodeShellNotFound,
		message: "The Windows Remote Shell received a request to perform an operation on a command identifier that does not exist. Either the command has completed execution or the client specified an invalid command identifier. "}
}

func faultSelectorRequired(name string) *fault {
	return &fault{status: http.StatusInternalServerError, action: actionWSManFault, code: "Sender",
		subcode: "w:InvalidSelectors", reason: invalidSelectorsReason,
		faultDetail: faultDetailBase + "UnexpectedSelectors",
		message:     "The Windows Remote Shell cannot process the request because it requires the following selector: " + name + ". Retry with the correct selector. "}
}

func faultMaxShells(limit int) *fault {
	return &fault{status: http.StatusInternalServerError, action: actionWSManFault, code: "Sender",
		subcode: "w:QuotaLimit", wsmanCode: CodeMaxShells,
		reason: "The WS-Management service cannot process the request. This user is allowed a maximum number of " +
			strconv.Itoa(limit) + " concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user. "}
}

// faultActionNotSupported is WS-Addressing's fault (the a: namespace), as DSP0226 lists it.
func faultActionNotSupported() *fault {
	return &fault{status: http.StatusInternalServerError, action: actionAddressingFault, code: "Sender",
		subcode: "a:ActionNotSupported", reason: "The action is not supported by the service. ",
		faultDetail: faultDetailBase + "ActionMismatch"}
}

func faultEncodingLimit(limit int) *fault {
	return &fault{status: http.StatusRequestEntityTooLarge, action: actionWSManFault, code: "Sender",
		subcode: "w:EncodingLimit", faultDetail: faultDetailBase + "ServiceEnvelopeLimit",
		reason: "The WS-Management service cannot process the request because the request size exceeded the configured MaxEnvelopeSize quota (" +
			strconv.Itoa(limit) + " bytes). "}
}

func faultMalformed() *fault {
	return &fault{status: http.StatusInternalServerError, action: actionWSManFault, code: "Sender",
		reason: "WinRM cannot process the request because the input XML contains a syntax error. "}
}

func faultVersionMismatch() *fault {
	return &fault{status: http.StatusInternalServerError, action: actionWSManFault, code: "VersionMismatch",
		reason: "The SOAP version of the request is not supported; use SOAP 1.2. "}
}

func faultHeaderRequired(header string) *fault {
	return &fault{status: http.StatusInternalServerError, action: actionAddressingFault, code: "Sender",
		subcode: "a:MessageInformationHeaderRequired",
		reason:  "A required message information header, To, MessageID, or Action, is not present: " + header + ". "}
}

func faultUnknownResource(uri string) *fault {
	return &fault{status: http.StatusInternalServerError, action: actionAddressingFault, code: "Sender",
		subcode: "a:DestinationUnreachable", faultDetail: faultDetailBase + "InvalidResourceURI",
		reason: "The WS-Management service cannot process the request. The resource URI (" + uri +
			") was not found in the WS-Management catalog. "}
}

// faultInvalidParameter is how the cmd shell plugin refuses a malformed shell request.
func faultInvalidParameter(what string) *fault {
	return &fault{status: http.StatusInternalServerError, action: actionWSManFault, code: "Receiver",
		subcode: "w:InternalError", reason: "The parameter is incorrect. ", wsmanCode: codeInvalidParameter,
		message: "The parameter is incorrect (" + what + "). ", provider: true}
}

// faultInternalError is WinRM's answer when something inside the service failed.
func faultInternalError() *fault {
	return &fault{status: http.StatusInternalServerError, action: actionWSManFault, code: "Receiver",
		subcode: "w:InternalError", reason: InternalErrorReason, wsmanCode: CodeInternalError}
}

// encode renders the fault envelope.
func (f *fault) encode(relatesTo, machine string) []byte {
	var b bytes.Buffer
	openEnvelope(&b, f.action, relatesTo)
	b.WriteString(`<s:Body><s:Fault><s:Code><s:Value>s:`)
	b.WriteString(f.code)
	b.WriteString(`</s:Value>`)
	if f.subcode != "" {
		b.WriteString(`<s:Subcode><s:Value>`)
		b.WriteString(f.subcode)
		b.WriteString(`</s:Value></s:Subcode>`)
	}
	b.WriteString(`</s:Code><s:Reason><s:Text xml:lang="en-US">`)
	escape(&b, f.reason)
	b.WriteString(`</s:Text></s:Reason>`)
	if f.faultDetail != "" || f.wsmanCode != 0 || f.message != "" {
		b.WriteString(`<s:Detail>`)
		if f.faultDetail != "" {
			b.WriteString(`<w:FaultDetail>`)
			escape(&b, f.faultDetail)
			b.WriteString(`</w:FaultDetail>`)
		}
		if f.wsmanCode != 0 || f.message != "" {
			msg := f.message
			if msg == "" {
				msg = f.reason
			}
			b.WriteString(`<f:WSManFault xmlns:f="` + NSFault + `"`)
			if f.wsmanCode != 0 {
				b.WriteString(` Code="`)
				b.WriteString(strconv.FormatUint(uint64(f.wsmanCode), 10))
				b.WriteString(`"`)
			}
			b.WriteString(` Machine="`)
			escape(&b, machine)
			b.WriteString(`"><f:Message>`)
			if f.provider {
				b.WriteString(`<f:ProviderFault provider="` + winrsProvider + `" path="`)
				escape(&b, winrsProviderPath)
				b.WriteString(`">`)
				escape(&b, msg)
				b.WriteString(`</f:ProviderFault>`)
			} else {
				escape(&b, msg)
			}
			b.WriteString(`</f:Message></f:WSManFault>`)
		}
		b.WriteString(`</s:Detail>`)
	}
	b.WriteString(`</s:Fault></s:Body></s:Envelope>`)
	return b.Bytes()
}
