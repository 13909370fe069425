package wsman

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"strconv"
	"strings"
)

// escape writes s as XML text or attribute content.
func escape(b *bytes.Buffer, s string) {
	// EscapeText only fails when the writer does; bytes.Buffer does not.
	_ = xml.EscapeText(b, []byte(s))
}

// openEnvelope writes the envelope start and the addressing header of an answer. Windows declares
// its prefixes once on the envelope; so do we.
func openEnvelope(b *bytes.Buffer, action, relatesTo string) {
	b.WriteString(`<s:Envelope xml:lang="en-US" xmlns:s="` + NSSoap + `" xmlns:a="` + NSAddress +
		`" xmlns:x="` + NSTransfer + `" xmlns:w="` + NSWSMan + `" xmlns:rsp="` + NSShell +
		`" xmlns:p="` + NSWSManMS + `"><s:Header><a:Action>`)
	escape(b, action)
	b.WriteString(`</a:Action><a:MessageID>uuid:`)
	b.WriteString(newGUID())
	b.WriteString(`</a:MessageID><a:To>` + anonymousTo + `</a:To>`)
	if relatesTo != "" {
		b.WriteString(`<a:RelatesTo>`)
		escape(b, relatesTo)
		b.WriteString(`</a:RelatesTo>`)
	}
	b.WriteString(`</s:Header>`)
}

func encodeCreateResponse(relatesTo, address string, sh *shell, owner, clientIP string, legacy bool) []byte {
	var b bytes.Buffer
	openEnvelope(&b, actionCreateResponse, relatesTo)
	b.WriteString(`<s:Body><x:ResourceCreated><a:Address>`)
	escape(&b, address)
	b.WriteString(`</a:Address><a:ReferenceParameters><w:ResourceURI>` + ResourceURICmd +
		`</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">`)
	escape(&b, sh.id)
	b.WriteString(`</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>`)
	if !legacy {
		// WinRM 2.0 also describes the new shell.
		b.WriteString(`<rsp:Shell><rsp:ShellId>`)
		escape(&b, sh.id)
		b.WriteString(`</rsp:ShellId><rsp:ResourceUri>` + ResourceURICmd + `</rsp:ResourceUri><rsp:Owner>`)
		escape(&b, owner)
		b.WriteString(`</rsp:Owner><rsp:ClientIP>`)
		escape(&b, clientIP)
		b.WriteString(`</rsp:ClientIP><rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut><rsp:InputStreams>`)
		escape(&b, strings.Join(sh.inputStreams, " "))
		b.WriteString(`</rsp:InputStreams><rsp:OutputStreams>`)
		escape(&b, strings.Join(sh.outputStreams, " "))
		b.WriteString(`</rsp:OutputStreams><rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime>` +
			`<rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>`)
	}
	b.WriteString(`</s:Body></s:Envelope>`)
	return b.Bytes()
}

func encodeCommandResponse(relatesTo, commandID string) []byte {
	var b bytes.Buffer
	openEnvelope(&b, actionCommandResponse, relatesTo)
	b.WriteString(`<s:Body><rsp:CommandResponse><rsp:CommandId>`)
	escape(&b, commandID)
	b.WriteString(`</rsp:CommandId></rsp:CommandResponse></s:Body></s:Envelope>`)
	return b.Bytes()
}

// encodeReceiveResponse renders output chunks and the command state.
func encodeReceiveResponse(relatesTo, commandID string, out receiveResult) []byte {
	var b bytes.Buffer
	openEnvelope(&b, actionReceiveResponse, relatesTo)
	b.WriteString(`<s:Body><rsp:ReceiveResponse>`)
	for _, c := range out.chunks {
		b.WriteString(`<rsp:Stream Name="`)
		escape(&b, c.stream)
		b.WriteString(`" CommandId="`)
		escape(&b, commandID)
		b.WriteString(`"`)
		if c.end {
			b.WriteString(` End="true"`)
		}
		b.WriteString(`>`)
		if len(c.data) > 0 {
			enc := base64.NewEncoder(base64.StdEncoding, &b)
			_, _ = enc.Write(c.data)
			_ = enc.Close()
		}
		b.WriteString(`</rsp:Stream>`)
	}
	b.WriteString(`<rsp:CommandState CommandId="`)
	escape(&b, commandID)
	if out.done {
		b.WriteString(`" State="` + StateDone + `"><rsp:ExitCode>`)
		b.WriteString(strconv.Itoa(out.exitCode))
		b.WriteString(`</rsp:ExitCode></rsp:CommandState>`)
	} else {
		b.WriteString(`" State="` + StateRunning + `"></rsp:CommandState>`)
	}
	b.WriteString(`</rsp:ReceiveResponse></s:Body></s:Envelope>`)
	return b.Bytes()
}

// receiveOverhead bounds the envelope bytes of a ReceiveResponse besides the base64 payload:
// header, command state and three stream elements (with an End marker each), with room to spare.
const receiveOverhead = 2048

// receiveBudget is how many raw output bytes one ReceiveResponse may carry so the whole
// envelope stays within envelopeLimit (base64 turns 3 bytes into 4).
func receiveBudget(envelopeLimit int) int {
	n := (envelopeLimit - receiveOverhead) / 4 * 3
	if n < 1024 {
		n = 1024
	}
	return n
}

func encodeEmptyResponse(action, relatesTo, body string) []byte {
	var b bytes.Buffer
	openEnvelope(&b, action, relatesTo)
	b.WriteString(`<s:Body>` + body + `</s:Body></s:Envelope>`)
	return b.Bytes()
}
