package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"unifi/internal/pgcluster"
	"unifi/models"
	"unifi/models/configpkg"
)

const packageUsage = `Usage:
  unifi package export NAME > file        write integration NAME's configuration (no secrets)
  unifi package import [--dry-run] FILE   show what FILE would create, change or leave alone, then import it
                                          in one database transaction (FILE "-" reads standard input)
The database is DATABASE_URL or, when it is unset, the private database of 'make run' (DATA_DIR, default .data).
`

// cmdPackage is `unifi package export|import` (docs/packages.md).
func cmdPackage(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "export" && args[0] != "import") {
		fmt.Fprint(stderr, packageUsage)
		return errors.New(`unknown "package" command; use "package export" or "package import"`)
	}
	fs := flag.NewFlagSet("package "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dryRun := fs.Bool("dry-run", false, "only show what the import would do")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprint(stderr, packageUsage)
		return fmt.Errorf("package %s takes one argument", args[0])
	}
	svc, closeDB, err := packageServices(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer closeDB()
	if args[0] == "export" {
		d, err := svc.packages.Export(ctx, fs.Arg(0))
		if errors.Is(err, models.ErrNotFound) {
			return fmt.Errorf("there is no integration called %q", fs.Arg(0))
		}
		if err != nil {
			return err
		}
		out, err := configpkg.Encode(d)
		if err != nil {
			return err
		}
		_, err = stdout.Write(out)
		return err
	}
	var in io.Reader = os.Stdin
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("open package: %w", err)
		}
		defer f.Close()
		in = f
	}
	d, err := configpkg.Decode(in)
	if err != nil {
		return err
	}
	plan, err := svc.packages.Plan(ctx, d)
	if err != nil {
		return err
	}
	writePlan(stdout, plan)
	if *dryRun {
		fmt.Fprintln(stdout, "Dry run: nothing was stored.")
		return nil
	}
	integration, err := svc.packages.Apply(ctx, models.Actor{Name: "cli"}, d, plan.Digest)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Imported integration %s: %d created, %d changed, %d left alone.\n", integration.Name,
		plan.Count(configpkg.Create), plan.Count(configpkg.Change), plan.Count(configpkg.Keep))
	if len(plan.NeedCredentials) > 0 {
		fmt.Fprintf(stdout, "Connection(s) %s stay inactive until their credentials are given: /integrations/%d/credentials\n",
			strings.Join(plan.NeedCredentials, ", "), integration.ID)
	}
	return nil
}

// writePlan prints the dry run, one record a line.
func writePlan(w io.Writer, p *configpkg.Plan) {
	fmt.Fprintf(w, "Import of integration %s (plan %s):\n", p.Integration, p.Digest)
	for _, s := range p.Steps {
		fmt.Fprintf(w, "  %-6s  %s %s\n", s.Action, s.Record, s.Name)
		for _, d := range s.Details {
			fmt.Fprintf(w, "            %s\n", d)
		}
	}
	fmt.Fprintf(w, "%d to create, %d to change, %d left alone.\n", p.Count(configpkg.Create), p.Count(configpkg.Change), p.Count(configpkg.Keep))
}

// packageServices opens DATABASE_URL or, when it is unset, the private
// database of `make run`: the running cluster when `make run` is up, or the
// cluster started for the command and stopped after it.
func packageServices(ctx context.Context, getenv func(string) string, stderr io.Writer) (*services, func(), error) {
	if getenv("DATABASE_URL") != "" {
		return toolServices(ctx, getenv)
	}
	dataDir := getenv("DATA_DIR")
	if dataDir == "" {
		dataDir = ".data"
	}
	dir := filepath.Join(dataDir, "pg")
	url, running := pgcluster.Running(dir, "unifi")
	stop := func() {}
	if !running {
		if _, err := os.Stat(filepath.Join(dir, "data", "PG_VERSION")); err != nil {
			return nil, nil, fmt.Errorf("DATABASE_URL is not set and there is no private database of 'make run' in %s", dir)
		}
		cl, err := pgcluster.Start(ctx, pgcluster.Opts{Dir: dir, Database: "unifi"})
		if err != nil {
			return nil, nil, err
		}
		url = cl.URL
		stop = func() {
			if err := cl.Stop(context.WithoutCancel(ctx)); err != nil {
				fmt.Fprintln(stderr, err)
			}
		}
	}
	env := map[string]string{"DATABASE_URL": url, "DATA_DIR": dataDir}
	svc, closeDB, err := toolServices(ctx, func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return getenv(k)
	})
	if err != nil {
		stop()
		return nil, nil, err
	}
	return svc, func() { closeDB(); stop() }, nil
}
