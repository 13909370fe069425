// Package scenarios loads, validates and expands wfplab scenarios: which guests, which
// phases, which traffic, and which verdict each cell is expected to reach.
package scenarios
