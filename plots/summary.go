package plots

import (
	"bytes"
	"fmt"
	"strings"
)

// renderSummary is the headline and the verdict table in Markdown, for a pull request or chat.
func renderSummary(rd *runData) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s\n\n", mdText(rd.title()))
	fmt.Fprintf(&b, "**%s**\n\n", mdText(rd.headline()))
	if rd.haveRun {
		finished := timeText(rd.run.Finished)
		if rd.run.Finished.IsZero() {
			finished = "not finished"
		}
		fmt.Fprintf(&b, "Scenario %s, seed %d, provider %s, wfplab %s; started %s, finished %s.\n\n",
			mdText(orDash(rd.run.Scenario)), rd.run.Seed, mdText(orDash(rd.run.Provider)), mdText(orDash(rd.run.Tool)),
			timeText(rd.run.Started), finished)
	}
	if len(rd.problems) > 0 {
		b.WriteString("> **Incomplete run**\n")
		for _, p := range rd.problems {
			fmt.Fprintf(&b, "> - %s\n", mdText(p))
		}
		b.WriteString("\n")
	}
	if len(rd.cells) == 0 {
		b.WriteString("No cells: the store holds no targets, phases or results.\n")
		return b.Bytes()
	}
	writeMatrixMarkdown(&b, rd.matrix(nil))
	_, confidence, ok := rd.verdictRule()
	if !ok {
		confidence = 0.95
	}
	fmt.Fprintf(&b, "| Target | Phase | Profile | netio.sys | Leak rate (B/s) | %g%% CI (B/s) | Bytes/chain | %g%% CI (B/chain) | Judged against | Chains/s | Packets/s | Verdict | Expected | Met |\n", 100*confidence, 100*confidence)
	b.WriteString("|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|---|---|---|\n")
	for _, c := range rd.cells {
		bpc, cps, pps := dash, dash, dash
		if r := c.Result; r != nil {
			bpc, cps, pps = num(r.BytesPerChain), num(r.ChainsPerSec), num(r.PacketsPerSec)
		}
		verdict := verdictText(c.Result)
		if c.Result != nil && c.Result.Verdict != "" {
			verdict = "**" + verdict + "**"
		}
		met := metText(c)
		if c.Status() == "failed" {
			met = "**NO**"
		}
		cols := []string{c.Target, c.Phase, c.Profile, netioText(c.PhaseInfo), leakText(c.Result), ciText(c.Result),
			bpc, perChainCIText(c.Result), rd.thresholdText(c.Result), cps, pps, verdict, expectedText(c), met}
		for i := range cols {
			if i != 11 && i != 13 { // already formatted with Markdown emphasis
				cols[i] = mdText(cols[i])
			}
		}
		fmt.Fprintf(&b, "| %s |\n", strings.Join(cols, " | "))
	}
	if rows := htmlTputRows(rd); len(rows) > 0 {
		fmt.Fprintf(&b, "\n**%s**\n\n", mdText(rd.tputHeadline()))
		b.WriteString("| Target | Profile | Classified/s before | after | Change | p | CPU % before | after | Throughput |\n")
		b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|---|\n")
		for _, r := range rows {
			cols := []string{r.Target, r.Profile, r.Before, r.After, r.Change, r.P, r.CPUBefore, r.CPUAfter, r.Verdict}
			for i := range cols {
				cols[i] = mdText(cols[i])
			}
			fmt.Fprintf(&b, "| %s |\n", strings.Join(cols, " | "))
		}
	}
	return b.Bytes()
}

// mdText keeps a value from breaking the table or turning into markup.
func mdText(s string) string {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '|', '\\', '*', '_', '`', '<', '>':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// verdictDot colours a verdict where Markdown has no colours.
var verdictDot = map[string]string{"v-leak": "🔴", "v-clean": "🟢", "v-inc": "🟡"}

// writeMatrixMarkdown is the verdict matrix as a Markdown table: a row per target, a
// column per phase × profile.
func writeMatrixMarkdown(b *bytes.Buffer, m matrix) {
	if len(m.Rows) == 0 {
		return
	}
	b.WriteString("| Target |")
	for _, ph := range m.Phases {
		for _, pr := range m.Profiles {
			fmt.Fprintf(b, " %s %s |", mdText(ph), mdText(pr))
		}
	}
	b.WriteString("\n|---|")
	b.WriteString(strings.Repeat(":-:|", len(m.Phases)*len(m.Profiles)))
	b.WriteString("\n")
	for _, row := range m.Rows {
		fmt.Fprintf(b, "| %s |", mdText(row.Target))
		for _, c := range row.Cells {
			rate := mdText(c.Achieved)
			if c.Asked != "" {
				rate += " of " + mdText(c.Asked)
			}
			if c.Under {
				rate = "**" + rate + "**"
			}
			dot := verdictDot[c.Class]
			if dot != "" {
				dot += " "
			}
			fmt.Fprintf(b, " %s**%s** %s<br>%s chains/s<br>%s pkts/s |", dot, mdText(c.Verdict), mdText(c.Mark()), mdText(c.Chains), rate)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n✓ the expected verdict, ✗ not the expected one, ? no verdict; chains/s: multi-NBL chains the driver blocked; pkts/s: achieved of asked, in bold under 90%.\n\n")
}
