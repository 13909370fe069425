package vagrant

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The unattend schema's fixed parts (Microsoft's Unattended Windows Setup Reference).
const (
	unattendNS     = "urn:schemas-microsoft-com:unattend"
	publicKeyToken = "31bf3856ad364e35"
)

// xmlNode is an element with its attributes, children and text, for checking answer files.
type xmlNode struct {
	Name     xml.Name
	Attr     []xml.Attr
	Children []*xmlNode
	Text     string
}

func (n *xmlNode) attr(local string) string {
	for _, a := range n.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// all returns the descendants along path (element local names), e.g. "UserData/ProductKey/Key".
func (n *xmlNode) all(path string) []*xmlNode {
	cur := []*xmlNode{n}
	for _, part := range strings.Split(path, "/") {
		var next []*xmlNode
		for _, c := range cur {
			for _, k := range c.Children {
				if k.Name.Local == part {
					next = append(next, k)
				}
			}
		}
		cur = next
	}
	return cur
}

func (n *xmlNode) text(path string) string {
	if ns := n.all(path); len(ns) > 0 {
		return strings.TrimSpace(ns[0].Text)
	}
	return ""
}

// parseXML reads a whole document strictly: any syntax error, or text after the root, fails.
func parseXML(r io.Reader) (*xmlNode, error) {
	d := xml.NewDecoder(r)
	d.Strict = true
	var root *xmlNode
	var stack []*xmlNode
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &xmlNode{Name: t.Name, Attr: t.Attr}
			if len(stack) == 0 {
				if root != nil {
					return nil, fmt.Errorf("a second root element <%s>", t.Name.Local)
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].Text += string(t)
			}
		}
	}
	if root == nil {
		return nil, errors.New("no root element")
	}
	return root, nil
}

var answerDir = regexp.MustCompile(`^(vista|win7|2008|2008r2)-(x86|x64)$`)

// Each answer file in vagrant/answer has the unattend schema's shape for its architecture and
// runs prepare-guest.cmd at first logon; every Vagrantfile machine has one; and what
// vagrant/README.md tells the user to use exists and matches the files.
func TestAnswerFiles(t *testing.T) {
	files, err := filepath.Glob("../../vagrant/answer/*/Autounattend.xml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no vagrant/answer/*/Autounattend.xml (%v)", err)
	}
	readme, err := os.ReadFile("../../vagrant/README.md")
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, f := range files {
		dir := filepath.Base(filepath.Dir(f))
		found[dir] = true
		t.Run(dir, func(t *testing.T) {
			m := answerDir.FindStringSubmatch(dir)
			if m == nil || dir == "2008r2-x86" {
				t.Fatalf("%s: folder %q is not <vista|win7|2008|2008r2>-<x86|x64> (2008 R2 is x64 only)", f, dir)
			}
			arch := map[string]string{"x86": "x86", "x64": "amd64"}[m[2]]
			checkAnswerFile(t, f, arch, string(readme))
		})
	}
	// Every machine of the Vagrantfile has its answer file: vista-sp1-x86 → vista-x86.
	vf, err := os.ReadFile("../../vagrant/Vagrantfile")
	if err != nil {
		t.Fatal(err)
	}
	sp := regexp.MustCompile(`-sp\d+`)
	for name := range MachineIndexes(vf) {
		if want := sp.ReplaceAllString(name, ""); !found[want] {
			t.Errorf("Vagrantfile machine %s has no answer file vagrant/answer/%s/Autounattend.xml", name, want)
		}
	}
	// What the README names exists: answer files, and the scripts it tells the user to run.
	for _, ref := range regexp.MustCompile(`answer/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+|[A-Za-z0-9_-]+\.cmd\b`).FindAllString(string(readme), -1) {
		if _, err := os.Stat(filepath.Join("../../vagrant", ref)); err != nil {
			t.Errorf("vagrant/README.md names %s, which is not in vagrant/: %v", ref, err)
		}
	}
}

func checkAnswerFile(t *testing.T, path, arch, readme string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	root, err := parseXML(f)
	if err != nil {
		t.Fatalf("%s is not well-formed XML: %v", path, err)
	}
	if root.Name.Local != "unattend" || root.Name.Space != unattendNS {
		t.Fatalf("%s: root is {%s}%s, want {%s}unattend", path, root.Name.Space, root.Name.Local, unattendNS)
	}
	// component returns the one component of that name in the pass, after checking every
	// component's identity attributes.
	passes := map[string]*xmlNode{}
	for _, s := range root.all("settings") {
		passes[s.attr("pass")] = s
		for _, c := range s.all("component") {
			if c.Name.Space != unattendNS {
				t.Errorf("%s: component %s in namespace %q", path, c.attr("name"), c.Name.Space)
			}
			if got := c.attr("processorArchitecture"); got != arch {
				t.Errorf("%s: pass %s component %s: processorArchitecture %q, want %q", path, s.attr("pass"), c.attr("name"), got, arch)
			}
			if got := c.attr("publicKeyToken"); got != publicKeyToken {
				t.Errorf("%s: component %s: publicKeyToken %q, want %q", path, c.attr("name"), got, publicKeyToken)
			}
		}
	}
	component := func(pass, name string) *xmlNode {
		s := passes[pass]
		if s == nil {
			t.Fatalf("%s: no <settings pass=%q>", path, pass)
		}
		for _, c := range s.all("component") {
			if c.attr("name") == name {
				return c
			}
		}
		t.Fatalf("%s: pass %s has no component %s", path, pass, name)
		return nil
	}
	intl := component("windowsPE", "Microsoft-Windows-International-Core-WinPE")
	if intl.text("SetupUILanguage/UILanguage") == "" || intl.text("UILanguage") == "" {
		t.Errorf("%s: International-Core-WinPE sets no UILanguage", path)
	}
	setup := component("windowsPE", "Microsoft-Windows-Setup")
	if setup.text("DiskConfiguration/Disk/DiskID") == "" || len(setup.all("DiskConfiguration/Disk/CreatePartitions/CreatePartition")) == 0 {
		t.Errorf("%s: DiskConfiguration creates no partition", path)
	}
	meta := setup.all("ImageInstall/OSImage/InstallFrom/MetaData")
	if len(meta) != 1 {
		t.Fatalf("%s: %d ImageInstall/OSImage/InstallFrom/MetaData, want 1", path, len(meta))
	}
	key, image := meta[0].text("Key"), meta[0].text("Value")
	if (key != "/IMAGE/NAME" && key != "/IMAGE/INDEX") || image == "" {
		t.Errorf("%s: MetaData %q = %q, want /IMAGE/NAME or /IMAGE/INDEX with a value", path, key, image)
	}
	if setup.text("ImageInstall/OSImage/InstallTo/PartitionID") == "" {
		t.Errorf("%s: OSImage has no InstallTo", path)
	}
	product := setup.text("UserData/ProductKey/Key")
	if !regexp.MustCompile(`^[A-Z0-9]{5}(-[A-Z0-9]{5}){4}$`).MatchString(product) {
		t.Errorf("%s: UserData/ProductKey/Key %q is not a product key", path, product)
	}
	if setup.text("UserData/AcceptEula") != "true" {
		t.Errorf("%s: UserData/AcceptEula is not true: Setup would stop at the license", path)
	}
	if name := component("specialize", "Microsoft-Windows-Shell-Setup").text("ComputerName"); name == "" || len(name) > 15 {
		t.Errorf("%s: ComputerName %q: 1 to 15 characters (NetBIOS)", path, name)
	}
	shell := component("oobeSystem", "Microsoft-Windows-Shell-Setup")
	var admin string
	for _, a := range shell.all("UserAccounts/LocalAccounts/LocalAccount") {
		if a.text("Group") == "Administrators" {
			admin = a.text("Name")
		}
	}
	if admin == "" {
		t.Errorf("%s: no LocalAccount in Administrators", path)
	}
	if shell.text("AutoLogon/Enabled") != "true" || shell.text("AutoLogon/Username") != admin {
		t.Errorf("%s: AutoLogon is not enabled for the administrator %q, so FirstLogonCommands would not run", path, admin)
	}
	var runs bool
	for _, c := range shell.all("FirstLogonCommands/SynchronousCommand") {
		if strings.Contains(c.text("CommandLine"), `:\prepare-guest.cmd 5985 5001 5002`) && c.text("Order") != "" {
			runs = true
		}
	}
	if !runs {
		t.Errorf(`%s: no FirstLogonCommands/SynchronousCommand runs prepare-guest.cmd 5985 5001 5002`, path)
	}
	// 3: no automatic updates, which could install the fix before the lab measures the bug.
	if got := shell.text("OOBE/ProtectYourPC"); got != "3" {
		t.Errorf("%s: OOBE/ProtectYourPC %q, want 3", path, got)
	}
	// The README's row for this file gives the same edition and key.
	rel := "answer/" + filepath.Base(filepath.Dir(path)) + "/Autounattend.xml"
	var row string
	for _, line := range strings.Split(readme, "\n") {
		if strings.HasPrefix(line, "|") && strings.Contains(line, "`"+rel+"`") {
			row = line
		}
	}
	if row == "" {
		t.Fatalf("vagrant/README.md's table has no row for %s", rel)
	}
	if !strings.Contains(row, key) || !strings.Contains(row, image) || !strings.Contains(row, product) {
		t.Errorf("vagrant/README.md's row for %s does not give the file's %s %q and key %s:\n%s", rel, key, image, product, row)
	}
}
