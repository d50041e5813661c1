import { Argument, type Command } from 'commander';
import { action } from './context.js';

/** Every command path (`hardware-smoke run`) with its options, from commander's own tree. */
function commandTable(program: Command): Map<string, string[]> {
  const table = new Map<string, string[]>();
  const walk = (cmd: Command, prefix: string[]) => {
    for (const sub of cmd.commands) {
      const words = [...prefix, sub.name()];
      table.set(
        words.join(' '),
        sub.options.map((o) => o.long).filter((l): l is string => Boolean(l)),
      );
      walk(sub, words);
    }
  };
  walk(program, []);
  return table;
}

/**
 * A bash completion script (zsh loads it through bashcompinit): commands, subcommands, each
 * command's options, and node names of the lab profile for ssh/logs.
 */
export function bashCompletion(program: Command): string {
  const table = commandTable(program);
  const globalOpts = program.options
    .map((o) => o.long)
    .filter(Boolean)
    .join(' ');
  const top = program.commands.map((c) => c.name()).join(' ');
  const cases = [...table]
    .map(([words, opts]) => {
      const subs = [...table.keys()]
        .filter((k) => k.startsWith(`${words} `) && k.split(' ').length === words.split(' ').length + 1)
        .map((k) => k.split(' ').at(-1));
      return `    "${words}") words="${[...subs, ...opts].join(' ')}" ;;`;
    })
    .join('\n');
  return `# ultracloud bash completion: source <(ultracloud completion bash)
# zsh: autoload -U +X bashcompinit && bashcompinit && source <(ultracloud completion zsh)
_ultracloud() {
  local cur=\${COMP_WORDS[COMP_CWORD]} path="" w words
  for w in "\${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
    case "$w" in -*) ;; *) if [[ -z $path ]]; then path=$w; else path="$path $w"; fi ;; esac
  done
  case "$path" in
    "") words="${top} ${globalOpts}" ;;
${cases}
    *) words="" ;;
  esac
  case "$path" in "ssh"|"logs") words="$words node01 node02 node03 node04 node05 node06" ;; esac
  COMPREPLY=( $(compgen -W "$words" -- "$cur") )
}
complete -F _ultracloud ultracloud
`;
}

export function registerCompletion(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script: source <(ultracloud completion bash)')
    .addArgument(new Argument('<shell>', 'bash or zsh').choices(['bash', 'zsh']))
    .action(
      action(async (shell: 'bash' | 'zsh') => {
        const script = bashCompletion(program);
        process.stdout.write(shell === 'zsh' ? `autoload -U +X bashcompinit && bashcompinit\n${script}` : script);
      }),
    );
}
