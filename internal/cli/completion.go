package cli

import (
	"github.com/spf13/cobra"
)

// NewCmdCompletion builds `otactl completion`.
func NewCmdCompletion(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print a shell completion script",
		Long: `Print a completion script for the given shell. Load it in the current
shell, or install it where your shell looks for completions.`,
		Example: `  source <(otactl completion bash)
  otactl completion zsh > "${fpath[1]}/_otactl"
  otactl completion fish > ~/.config/fish/completions/otactl.fish`,
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		Args: func(cmd *cobra.Command, args []string) error {
			if err := exactArgs(1)(cmd, args); err != nil {
				return err
			}
			if err := cobra.OnlyValidArgs(cmd, args); err != nil {
				return &FlagError{Err: err}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			root, out := cmd.Root(), f.IO.Out
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			default:
				return root.GenPowerShellCompletionWithDesc(out)
			}
		},
	}
}
