from pbxcore.cli.main import main

main()
