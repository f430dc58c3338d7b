from vecspread.cli import main

main()
