from vecspread.entry import main

main()
