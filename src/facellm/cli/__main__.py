from facellm.cli import main

main()
