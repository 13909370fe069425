package lab

import (
	"strings"
	"testing"

	"github.com/masterzen/winrm"
)

// FuzzSOAPAnswer feeds what a guest may send back to the lab's side of SOAP: the transport's
// fault reading, and the library's answer parsers on what the transport lets through
// (its XPath panics on some malformed XML: testdata keeps the case). None may panic.
func FuzzSOAPAnswer(f *testing.F) {
	f.Add(`<s:Envelope><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:InternalError</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">internal error </s:Text></s:Reason></s:Fault></s:Body></s:Envelope>`)
	f.Add(`<s:Envelope><s:Body><rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="1">aGk=</rsp:Stream><rsp:CommandState CommandId="1" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"><rsp:ExitCode>0</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse></s:Body></s:Envelope>`)
	f.Add(`<a:Action s:mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive</a:Action>`)
	f.Fuzz(func(t *testing.T, body string) {
		if r := faultReason([]byte(body)); r == "" {
			t.Fatal("empty fault reason")
		}
		if a := shortAction(soapAction(body)); strings.Contains(a, "/") {
			t.Fatalf("short action %q", a)
		}
		if wellFormed([]byte(body)) != nil {
			return // the transport hands the library well-formed answers only
		}
		_, _ = winrm.ParseOpenShellResponse(body)
		_, _ = winrm.ParseExecuteCommandResponse(body)
		var out, errb strings.Builder
		_, _, _ = winrm.ParseSlurpOutputErrResponse(body, &out, &errb)
	})
}
