package bench

import (
	"context"
	"time"

	"github.com/wfplab/wfplab/lab"
	"github.com/wfplab/wfplab/lab/agent"
)

// LabGuest is a Guest over a lab.Guest: Prepare installs Tools, InstallHotfix installs the
// KB979223 package Hotfix (the MSU's bytes for this guest's OS).
type LabGuest struct {
	G      *lab.Guest
	Tools  lab.Tools
	Hotfix []byte
}

func (l LabGuest) Name() string { return l.G.Name() }

func (l LabGuest) Prepare(ctx context.Context) (agent.Inventory, error) {
	return l.G.Prepare(ctx, l.Tools)
}

func (l LabGuest) InstallHotfix(ctx context.Context) (agent.Inventory, error) {
	_, inv, err := l.G.InstallHotfix(ctx, l.Hotfix)
	return inv, err
}

func (l LabGuest) StartSampler(ctx context.Context, interval time.Duration) (Sampler, error) {
	s, err := l.G.StartSampler(ctx, interval)
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	return s, nil
}

var _ Guest = LabGuest{}
