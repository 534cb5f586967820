package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/otaship/ota/internal/auth"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/store/bolt"
	"github.com/otaship/ota/internal/store/postgres"
)

// Environment variables that create a user without a terminal, for
// containers. They are read only by serve and never logged.
const (
	envAdminUser     = "OTAD_ADMIN_USER"
	envAdminPassword = "OTAD_ADMIN_PASSWORD"
)

// initialAdmin is the user created on a first start without OTAD_ADMIN_*.
const initialAdmin = "admin"

// minPasswordLen: anything shorter is too easy to guess for an account that
// can ship code to every installed app. The upper bound is bcrypt's.
const minPasswordLen = 8

// openTimeout bounds the wait for the database lock: a second otad on the
// same data directory must fail at once, not hang.
const openTimeout = time.Second

var userNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

func validateUserName(name string) error {
	if !userNameRE.MatchString(name) {
		return fmt.Errorf("user name %q: use 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit", name)
	}
	return nil
}

func validatePassword(pw string) error {
	switch {
	case len([]rune(pw)) < minPasswordLen:
		return fmt.Errorf("password is too short: use at least %d characters", minPasswordLen)
	case len(pw) > auth.MaxPasswordLen:
		return fmt.Errorf("password is too long: use at most %d bytes", auth.MaxPasswordLen)
	}
	return nil
}

// openStore opens the database in dataDir. With create, a missing data
// directory and database are created; without, their absence is an error,
// so a mistyped --data-dir is not mistaken for an empty server.
func openStore(dataDir string, create bool) (*bolt.Store, error) {
	c := &config{DataDir: dataDir}
	if create {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
	} else if _, err := os.Stat(c.DBPath()); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no otad database in %s: check --data-dir, or run otad serve or otad user add first", dataDir)
	}
	st, err := bolt.Open(c.DBPath(), bolt.Options{Timeout: openTimeout})
	if errors.Is(err, bolt.ErrLocked) {
		return nil, &lockedError{dir: dataDir, err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return st, nil
}

// openConfiguredStore opens the store cfg names: the PostgreSQL database
// of --database-url when set, else the bbolt file in the data dir (see
// openStore for create).
func openConfiguredStore(ctx context.Context, cfg *config, create bool) (store.Store, error) {
	if cfg.DatabaseURL == "" {
		return openStore(cfg.DataDir, create)
	}
	return openDatabase(ctx, cfg.DatabaseURL, create)
}

// openDatabase opens the PostgreSQL store at url, migrating its schema.
// Without create, a database otad never used is an error, so a mistyped
// URL is not mistaken for an empty server.
func openDatabase(ctx context.Context, url string, create bool) (*postgres.Store, error) {
	st, err := postgres.Open(ctx, url, postgres.Options{MustExist: !create})
	if errors.Is(err, postgres.ErrNoSchema) {
		return nil, fmt.Errorf("%w: check --database-url, or run otad serve, otad migrate or otad user add first", err)
	}
	return st, err
}

// lockedError reports a data dir held by another process. Its text is
// otad's own: the store's wording is written for its own callers.
type lockedError struct {
	dir string
	err error
}

func (e *lockedError) Error() string {
	return fmt.Sprintf("data dir %s is in use by another otad (stop that otad first, or pass another --data-dir)", e.dir)
}

func (e *lockedError) Unwrap() error { return e.err }

// ensureUsers makes sure someone can log in: it creates the user named by
// OTAD_ADMIN_USER when missing, or on a store without users an "admin" with
// a random password printed once on the terminal. It never changes an
// existing password. On a data dir that has users already it says which,
// and how to reset a password, since nothing else is printed then and a
// password shown at the first start is easily lost; an OTAD_ADMIN_PASSWORD
// that is not the existing user's is a warning on stderr, where the
// operator sees it, not only a log line.
func ensureUsers(ctx context.Context, e *env, st store.Store, cost int, dataDir, publicURL string, log *slog.Logger) error {
	name, pw := e.getenv(envAdminUser), e.getenv(envAdminPassword)
	if (name == "") != (pw == "") {
		return fmt.Errorf("set both %s and %s, or neither", envAdminUser, envAdminPassword)
	}
	now := time.Now().UTC()
	if name != "" {
		if err := validateUserName(name); err != nil {
			return fmt.Errorf("%s: %w", envAdminUser, err)
		}
		if err := validatePassword(pw); err != nil {
			return fmt.Errorf("%s: %w", envAdminPassword, err)
		}
		u, err := st.GetUser(ctx, name)
		switch {
		case err == nil:
			if !auth.CheckPassword(u.PasswordHash, pw) {
				printPasswordMismatch(e.stderr, name, dataDir)
				log.Warn("the user named by "+envAdminUser+" exists with another password; it was left unchanged (change it with otad user passwd)", "user", name)
			}
			return printUsers(ctx, e.stderr, st, dataDir)
		case !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("look up user %s: %w", name, err)
		}
		if err := createUser(ctx, st, name, pw, cost, now); err != nil {
			return err
		}
		log.Info("created user from "+envAdminUser, "user", name)
		return nil
	}

	users, err := st.ListUsers(ctx)
	if err != nil {
		return fmt.Errorf("list users: %w", err)
	}
	if len(users) > 0 {
		return printUsers(ctx, e.stderr, st, dataDir)
	}
	pw = auth.RandomPassword()
	if err := createUser(ctx, st, initialAdmin, pw, cost, now); err != nil {
		return err
	}
	printInitialPassword(e.stderr, initialAdmin, pw, publicURL)
	log.Info("created the initial user; its password was printed once on standard error, above", "user", initialAdmin)
	return nil
}

// maxUsersNamed bounds the user names a start prints.
const maxUsersNamed = 10

// printUsers tells, on a start over existing users, who can log in and how
// to reset a password. It goes straight to stderr, as the first start's
// password does: a log line at info level is easily missed.
func printUsers(ctx context.Context, w io.Writer, st store.Store, dataDir string) error {
	users, err := st.ListUsers(ctx)
	if err != nil {
		return fmt.Errorf("list users: %w", err)
	}
	names := make([]string, 0, min(len(users), maxUsersNamed))
	example := users[0].Name
	for i, u := range users {
		if i < maxUsersNamed {
			names = append(names, u.Name)
		}
		if u.Name == initialAdmin {
			example = u.Name
		}
	}
	list := strings.Join(names, ", ")
	if len(users) > maxUsersNamed {
		list += fmt.Sprintf(" and %d more (otad user list)", len(users)-maxUsersNamed)
	}
	fmt.Fprintf(w, "otad: users of %s: %s (passwords are not shown again).\n", dataDir, list)
	fmt.Fprintf(w, "otad: forgot one? stop otad and run: otad user passwd %s --data-dir %s\n", example, dataDir)
	return nil
}

// printPasswordMismatch warns that OTAD_ADMIN_PASSWORD was not applied.
func printPasswordMismatch(w io.Writer, user, dataDir string) {
	fmt.Fprintf(w, `otad: WARNING: %[1]s is not the password of user %[2]s, which exists already in %[3]s.
otad: the stored password was left unchanged, so logging in with %[1]s fails. Log in with the
otad: existing password, or stop otad and set it: otad user passwd %[2]s --data-dir %[3]s
`, envAdminPassword, user, dataDir)
}

func createUser(ctx context.Context, st store.Store, name, pw string, cost int, now time.Time) error {
	hash, err := auth.HashPassword(pw, cost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	err = st.CreateUser(ctx, store.User{Name: name, PasswordHash: hash, CreatedAt: now, UpdatedAt: now})
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("user %s already exists (change its password with otad user passwd %s)", name, name)
	}
	if err != nil {
		return fmt.Errorf("create user %s: %w", name, err)
	}
	return nil
}

// printInitialPassword shows the generated password in a box that stands
// out of the log lines around it. It is written straight to the terminal,
// never through the logger, and only on the start that created the user.
func printInitialPassword(w io.Writer, user, pw, publicURL string) {
	const rule = "*************************************************************************"
	fmt.Fprintf(w, `
%[1]s

  otad created the first user of this server:

      user:     %[2]s
      password: %[3]s

  This password is shown only this once. Log in with
      otactl login --server %[4]s --username %[2]s
  and change it with
      otad user passwd %[2]s   (while otad is stopped)

%[1]s

`, rule, user, pw, publicURL)
}

func newUserCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage the users of the admin API (offline)",
		Long: `Manage the users who may log in to the admin API.

These commands open the database directly. With the bbolt file in the data
dir, otad must not be running on it: stop it first. With --database-url
(PostgreSQL) they work while otad runs.`,
	}
	var add, passwd passwordFlags
	addCmd := &cobra.Command{
		Use:     "add NAME",
		Short:   "Create a user",
		Example: "  otad user add alice\n  printf '%s\\n' \"$PASSWORD\" | otad user add ci --password-stdin",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return userAdd(cmd.Context(), e, cmd, args[0], add)
		},
	}
	add.register(addCmd)
	listCmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List users",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return userList(cmd.Context(), e, cmd)
		},
	}
	passwdCmd := &cobra.Command{
		Use:   "passwd NAME",
		Short: "Set a user's password; tokens issued before stop working",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return userPasswd(cmd.Context(), e, cmd, args[0], passwd)
		},
	}
	passwd.register(passwdCmd)
	rmCmd := &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"remove"},
		Short:   "Delete a user",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return userRemove(cmd.Context(), e, cmd, args[0])
		},
	}
	cmd.AddCommand(addCmd, listCmd, passwdCmd, rmCmd)
	return cmd
}

type passwordFlags struct{ stdin *bool }

func (p *passwordFlags) register(cmd *cobra.Command) {
	p.stdin = cmd.Flags().Bool("password-stdin", false, "read the password from the first line of standard input instead of prompting")
}

// withStore runs fn on the store of the data dir the command's flags,
// environment and config file name, and closes it afterwards.
func withStore(e *env, cmd *cobra.Command, create bool, fn func(st store.Store) error) (err error) {
	cfg, err := loadConfig(cmd.Flags(), e.getenv)
	if err != nil {
		return &usageError{err}
	}
	st, err := openConfiguredStore(cmd.Context(), cfg, create)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := st.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close database: %w", cerr)
		}
	}()
	return fn(st)
}

// noSuchUser turns the store's not-found into advice.
func noSuchUser(name string, err error, doing string) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no user named %s (see otad user list)", name)
	}
	return fmt.Errorf("%s %s: %w", doing, name, err)
}

func userAdd(ctx context.Context, e *env, cmd *cobra.Command, name string, pf passwordFlags) error {
	if err := validateUserName(name); err != nil {
		return &usageError{err}
	}
	cost, err := e.bcryptCost()
	if err != nil {
		return err
	}
	// Read the password before opening the store: the lock should not be
	// held while someone types.
	pw, err := readPassword(e, *pf.stdin)
	if err != nil {
		return err
	}
	err = withStore(e, cmd, true, func(st store.Store) error {
		return createUser(ctx, st, name, pw, cost, time.Now().UTC())
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Created user %s.\n", name)
	return nil
}

func userList(ctx context.Context, e *env, cmd *cobra.Command) error {
	return withStore(e, cmd, false, func(st store.Store) error {
		users, err := st.ListUsers(ctx)
		if err != nil {
			return fmt.Errorf("list users: %w", err)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tCREATED\tPASSWORD CHANGED")
		for _, u := range users {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Name, u.CreatedAt.UTC().Format(time.RFC3339), u.UpdatedAt.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	})
}

func userPasswd(ctx context.Context, e *env, cmd *cobra.Command, name string, pf passwordFlags) error {
	cost, err := e.bcryptCost()
	if err != nil {
		return err
	}
	// Check the user exists before asking for a password nobody can use,
	// and do not hold the lock while someone types.
	err = withStore(e, cmd, false, func(st store.Store) error {
		_, err := st.GetUser(ctx, name)
		return err
	})
	if err != nil {
		return noSuchUser(name, err, "look up user")
	}
	pw, err := readPassword(e, *pf.stdin)
	if err != nil {
		return err
	}
	hash, err := auth.HashPassword(pw, cost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	err = withStore(e, cmd, false, func(st store.Store) error {
		_, err := st.SetPassword(ctx, name, hash, time.Now().UTC())
		return err
	})
	if err != nil {
		return noSuchUser(name, err, "set password of")
	}
	fmt.Fprintf(e.stdout, "Changed the password of %s; tokens issued before no longer work.\n", name)
	return nil
}

func userRemove(ctx context.Context, e *env, cmd *cobra.Command, name string) error {
	err := withStore(e, cmd, false, func(st store.Store) error {
		return st.DeleteUser(ctx, name)
	})
	if err != nil {
		return noSuchUser(name, err, "delete user")
	}
	fmt.Fprintf(e.stdout, "Deleted user %s.\n", name)
	return nil
}

// readPassword reads a new password: the first line of stdin with
// --password-stdin, else twice from a no-echo prompt on the terminal.
func readPassword(e *env, fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(e.stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			if errors.Is(err, io.EOF) {
				return "", errors.New("no password on standard input")
			}
			return "", fmt.Errorf("read password from standard input: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		return pw, validatePassword(pw)
	}
	f, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", &usageError{errors.New("standard input is not a terminal: pass --password-stdin and write the password on standard input")}
	}
	ask := func(prompt string) (string, error) {
		fmt.Fprint(e.stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return string(b), nil
	}
	pw, err := ask("New password: ")
	if err != nil {
		return "", err
	}
	if err := validatePassword(pw); err != nil {
		return "", err
	}
	again, err := ask("Repeat password: ")
	if err != nil {
		return "", err
	}
	if again != pw {
		return "", errors.New("the two passwords differ; nothing was changed")
	}
	return pw, nil
}
