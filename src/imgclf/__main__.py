from imgclf.cli.main import main

main()
