package auth

import "golang.org/x/crypto/bcrypt"

// UnknownUserCost is the cost of u's hash (0 before its first Check).
func UnknownUserCost(u *UnknownUser) int {
	c, err := bcrypt.Cost(u.hash)
	if err != nil {
		return 0
	}
	return c
}
