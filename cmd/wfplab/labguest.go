package main

import (
	"context"
	"time"

	"github.com/wfplab/wfplab/bench"
	"github.com/wfplab/wfplab/lab"
	"github.com/wfplab/wfplab/lab/agentfmt"
	"github.com/wfplab/wfplab/lab/contract"
)

// LabGuest is a bench.Guest over a lab.Session: Prepare installs Tools, InstallHotfix installs the
// KB979223 package Hotfix (the MSU's bytes for this guest's OS).
type LabGuest struct {
	G      *lab.Session
	Tools  lab.Tools
	Hotfix []byte
}

func (l LabGuest) Name() string { return l.G.Name() }

func (l LabGuest) Prepare(ctx context.Context) (contract.Inventory, error) {
	return l.G.Prepare(ctx, l.Tools)
}

func (l LabGuest) InstallHotfix(ctx context.Context) (contract.Inventory, error) {
	_, inv, err := l.G.InstallHotfix(ctx, l.Hotfix)
	return inv, err
}

func (l LabGuest) StartSampler(ctx context.Context, interval time.Duration) (bench.Sampler, error) {
	s, err := l.G.StartSampler(ctx, interval)
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	return s, nil
}

var _ bench.Guest = LabGuest{}

// Ping asks the guest for its boot time: any answer means WinRM and cmd still work.
func (l LabGuest) Ping(ctx context.Context) error {
	_, err := l.G.BootTime(ctx)
	return err
}

var _ bench.Pinger = LabGuest{}

// SetDriverMode switches the driver between block and permit-and-count.
func (l LabGuest) SetDriverMode(ctx context.Context, permit bool) error {
	mode := agentfmt.ModeBlock
	if permit {
		mode = agentfmt.ModePermit
	}
	_, err := l.G.SetDriverMode(ctx, mode)
	return err
}

var _ bench.ModeSetter = LabGuest{}

// Revive waits for the guest to answer again and makes sure its driver runs.
func (l LabGuest) Revive(ctx context.Context) (contract.Inventory, error) { return l.G.Revive(ctx) }

var _ bench.Reviver = LabGuest{}
