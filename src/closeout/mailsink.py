"""`python -m closeout.mailsink --dir DIR [--port N]`: the local SMTP sink (closeout.deliver.mailsink), under the name
`make demo`, the README and deployments start it by."""

from closeout.deliver.mailsink import main

if __name__ == "__main__":
    main()
