package plots

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
	"time"
)

// JUnit XML as Jenkins, GitLab and most CI systems read it (the common junit-10 schema):
// one testsuite per target, one testcase per expected cell.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Hostname   string          `xml:"hostname,attr"`
	ID         int             `xml:"id,attr"`
	Package    string          `xml:"package,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

func seconds(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return fmt.Sprintf("%.3f", d.Seconds())
}

func renderJUnit(rd *runData) ([]byte, error) {
	root := junitSuites{Name: "wfplab " + orDash(rd.run.Scenario)}
	if rd.run.ID != "" {
		root.Name += " " + rd.run.ID
	}
	var total time.Duration
	for i, td := range rd.targets {
		s := junitSuite{Name: td.info.Name, Hostname: td.info.Name, ID: i, Package: "wfplab." + orDash(rd.run.Scenario)}
		if len(td.phases) > 0 && !td.phases[0].Started.IsZero() {
			s.Timestamp = td.phases[0].Started.UTC().Format("2006-01-02T15:04:05")
		}
		for _, kv := range []keyValue{{"os", td.info.OS}, {"product", td.info.Product}, {"arch", td.info.Arch}} {
			if kv.Value != "" {
				s.Properties = append(s.Properties, junitProperty{kv.Key, kv.Value})
			}
		}
		for _, ph := range rd.phases {
			p, ok := td.phase(ph)
			if !ok {
				s.Properties = append(s.Properties, junitProperty{"netio." + ph, "phase not run"})
				continue
			}
			s.Properties = append(s.Properties, junitProperty{"netio." + ph, orDash(p.Netio)},
				junitProperty{"hotfix." + ph, orDash(p.Hotfix)})
			if p.OSBuild != "" {
				s.Properties = append(s.Properties, junitProperty{"build." + ph, p.OSBuild})
			}
		}
		var suiteTime time.Duration
		for _, c := range td.cells {
			if !c.HasExpectation() {
				continue // only expectations are tests
			}
			tc := junitCase{Name: c.Phase + "/" + c.Profile, Classname: c.Target, Time: seconds(0)}
			if w := c.Window; w != nil && !w.End.IsZero() {
				d := w.End.Sub(w.Start)
				tc.Time = seconds(d)
				if d > 0 {
					suiteTime += d
				}
			}
			s.Tests++
			switch c.Status() {
			case "missing":
				s.Skipped++
				why := "the run ended before this cell was measured"
				if !rd.run.Finished.IsZero() {
					why = "the run finished without one (see the report's problems and events)"
				}
				tc.Skipped = &junitSkipped{Message: fmt.Sprintf("no result for %s %s/%s: %s (expected %s)",
					c.Target, c.Phase, c.Profile, why, c.Expected)}
			case "incomplete":
				// A cut-short window says nothing about the hotfix: never a failure.
				s.Skipped++
				tc.Skipped = &junitSkipped{Message: fmt.Sprintf("INCOMPLETE %s %s/%s: %s (expected %s)",
					c.Target, c.Phase, c.Profile, c.Result.Note, c.Expected)}
			case "failed":
				s.Failures++
				tc.Failure = &junitFailure{
					Type:    "verdict",
					Message: fmt.Sprintf("expected %s, got %s: leak rate %s B/s, CI %s", c.Expected, verdictText(c.Result), leakText(c.Result), ciText(c.Result)),
					Text:    failureDetail(c),
				}
			}
			s.Cases = append(s.Cases, tc)
		}
		s.Time = seconds(suiteTime)
		total += suiteTime
		root.Tests += s.Tests
		root.Failures += s.Failures
		root.Suites = append(root.Suites, s)
	}
	root.Time = seconds(total)

	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	buf.WriteString("\n")
	return buf.Bytes(), nil
}

func failureDetail(c *cell) string {
	r := c.Result
	lines := []string{
		fmt.Sprintf("target %s, phase %s, profile %s", c.Target, c.Phase, c.Profile),
		"netio.sys " + netioText(c.PhaseInfo),
		fmt.Sprintf("leak rate %s B/s, CI %s (%s)", leakText(r), ciText(r), samplesText(r)),
		fmt.Sprintf("bytes/chain %s, multi-NBL chains/s %s, packets/s %s", num(r.BytesPerChain), num(r.ChainsPerSec), num(r.PacketsPerSec)),
		fmt.Sprintf("verdict %s, expected %s", verdictText(r), c.Expected),
	}
	if r.Note != "" {
		lines = append(lines, "note: "+r.Note)
	}
	return strings.Join(lines, "\n")
}
