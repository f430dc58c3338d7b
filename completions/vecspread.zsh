
#compdef vecspread

_vecspread_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _VECSPREAD_COMPLETE=complete_zsh vecspread)
}

compdef _vecspread_completion vecspread

