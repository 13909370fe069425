package main

import (
	_ "github.com/hashicorp/go-multierror"
	_ "github.com/masterzen/winrm"
	_ "github.com/spf13/cobra"
	_ "github.com/vbauerster/mpb/v8"
	_ "golang.org/x/net/ipv4"
	_ "golang.org/x/net/ipv6"
	_ "gonum.org/v1/plot"
	_ "gonum.org/v1/plot/plotter"
	_ "gonum.org/v1/plot/vg/draw"
	_ "gopkg.in/yaml.v3"
	_ "modernc.org/sqlite"
)

func main() {}
